#!/usr/bin/env bash
# bench/compare.sh: pushd against Nchan, side by side, on this machine.
#
# Installs nginx and Nchan from Debian's packages if missing, starts Nchan
# (nginx, 1 worker) and pushd with equivalent settings (buffer 20, message
# TTL 1h, no subscriber timeout), each pinned to core 0, runs the same loads
# with bench's load tool (cmd/pushload) pinned to core 1, alternating between
# the two servers, R times, and prints a table of medians with the ratio
# pushd/Nchan per figure. Each server is started fresh for each run, so no
# run sees the state (or the heap) left by another. Everything started here
# is stopped on exit.
#
# Usage: bench/compare.sh [-n 10000] [-r 3] [-m 100] [-hold 19000]
#                         [-quick] [-pushd-src DIR] [-out DIR] [-only LABELS]
#   -n        subscribers for the idle, fan-out and long-poll loads
#   -r        repetitions (medians are taken over them)
#   -m        messages in the back-to-back fan-out
#   -hold     subscribers for the "held by one server" load (0 skips it)
#   -quick    a short run: -n 2000 -r 1 -hold 2000 -pubtime 2s
#   -pubtime  duration of the publish-rate load (default 5s)
#   -pushd-src  the module tree to build pushd from (default: this checkout)
#   -out      where results.jsonl, logs and the table go (default: a temp dir)
#   -only     comma-separated labels to run: idle-ws,idle-lp,fanout-ws,pubrate,lp10,hold
#   -no-warmup  skip the discarded warm-up round (one idle-ws run per server)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=10000 R=3 M=100 HOLD=19000 PUBTIME=5s PUSHD_SRC=$ROOT OUT="" ONLY="" WARMUP=1
PUSHD_PORT=${PUSHD_PORT:-18080} NCHAN_PORT=${NCHAN_PORT:-18081}
while [ $# -gt 0 ]; do
	case $1 in
	-n) N=$2; shift 2 ;;
	-r) R=$2; shift 2 ;;
	-m) M=$2; shift 2 ;;
	-hold) HOLD=$2; shift 2 ;;
	-pubtime) PUBTIME=$2; shift 2 ;;
	-quick) N=2000 R=1 HOLD=2000 PUBTIME=2s; shift ;;
	-pushd-src) PUSHD_SRC=$(cd "$2" && pwd); shift 2 ;;
	-out) OUT=$2; shift 2 ;;
	-only) ONLY=$2; shift 2 ;;
	-no-warmup) WARMUP=0; shift ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "compare.sh: unknown option $1 (see -h)" >&2; exit 2 ;;
	esac
done

TMP=$(mktemp -d /tmp/push-compare.XXXXXX)
OUT=${OUT:-$TMP/out}
mkdir -p "$OUT"
RESULTS=$OUT/results.jsonl
: >"$RESULTS"
SERVER_PID="" NGINX_MASTER=""

stop_server() {
	if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
		kill "$SERVER_PID" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
		kill -9 "$SERVER_PID" 2>/dev/null || true
		wait "$SERVER_PID" 2>/dev/null || true
	fi
	if [ -n "$NGINX_MASTER" ] && [ -f "$TMP/nginx/error.log" ]; then
		cat "$TMP/nginx/error.log" >>"$OUT/nginx-error.log"
	fi
	SERVER_PID="" NGINX_MASTER=""
}
cleanup() {
	stop_server
	rm -rf "$TMP/nginx" "$TMP/bin"
	echo "compare.sh: results and logs in $OUT" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

# Cores: the server on core 0, the load tool on core 1.
if [ "$(nproc)" -ge 2 ]; then
	PIN_SERVER="taskset -c 0" PIN_LOAD="taskset -c 1"
else
	log "only one core: nothing is pinned, figures mean little"
	PIN_SERVER="" PIN_LOAD=""
fi

# nginx and Nchan from Debian's packages.
NCHAN_SO=/usr/lib/nginx/modules/ngx_nchan_module.so
if ! command -v nginx >/dev/null || [ ! -f "$NCHAN_SO" ]; then
	log "installing nginx-light and libnginx-mod-nchan (apt-get)"
	if [ "$(id -u)" -ne 0 ]; then
		echo "compare.sh: nginx with Nchan is missing; run as root or: apt-get install nginx-light libnginx-mod-nchan" >&2
		exit 1
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light libnginx-mod-nchan >"$OUT/apt.log" 2>&1
fi

# Build the two programs.
mkdir -p "$TMP/bin"
log "building pushd from $PUSHD_SRC and pushload from $ROOT"
(cd "$PUSHD_SRC" && go build -o "$TMP/bin/pushd" ./cmd/pushd)
(cd "$ROOT" && go build -o "$TMP/bin/pushload" ./cmd/pushload)
PUSHLOAD=$TMP/bin/pushload

port_free() { # port
	if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
		echo "compare.sh: something already listens on 127.0.0.1:$1; stop it or set PUSHD_PORT/NCHAN_PORT" >&2
		exit 1
	fi
}
port_free "$PUSHD_PORT"
port_free "$NCHAN_PORT"

wait_port() { # host:port
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "compare.sh: nothing listens on $1 after 10s" >&2
	return 1
}

start_pushd() {
	$PIN_SERVER "$TMP/bin/pushd" -addr "127.0.0.1:$PUSHD_PORT" -buffer 20 -message-ttl 1h \
		-subscriber-timeout 0 -shutdown-timeout 1s -log-level warn >>"$OUT/pushd.log" 2>&1 &
	SERVER_PID=$!
	wait_port "127.0.0.1:$PUSHD_PORT"
	LOAD_PID=$SERVER_PID
}

start_nchan() {
	local d=$TMP/nginx
	rm -rf "$d"
	mkdir -p "$d"
	# One worker like pushd's one core; limits as high as this machine
	# allows (RLIMIT_NOFILE hard limit). keepalive_requests is raised so
	# Nchan's publishers are not reconnected every 1000 requests (pushd
	# has no such limit).
	cat >"$d/nginx.conf" <<EOF
load_module $NCHAN_SO;
$([ "$(id -u)" -eq 0 ] && echo "user root;")
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile $(ulimit -Hn);
pid $d/nginx.pid;
error_log $d/error.log warn;
events { worker_connections $(ulimit -Hn); multi_accept on; }
http {
  access_log off;
  client_body_temp_path $d/body;
  proxy_temp_path $d/proxy;
  fastcgi_temp_path $d/fastcgi;
  uwsgi_temp_path $d/uwsgi;
  scgi_temp_path $d/scgi;
  keepalive_requests 10000000;
  nchan_shared_memory_size 256M;
  server {
    listen 127.0.0.1:$NCHAN_PORT backlog=4096;
    location = /pub {
      nchan_publisher;
      nchan_channel_id \$arg_id;
      nchan_message_buffer_length 20;
      nchan_message_timeout 1h;
    }
    location = /sub {
      nchan_subscriber;
      nchan_channel_id \$arg_id;
      nchan_subscriber_timeout 0;
    }
  }
}
EOF
	$PIN_SERVER nginx -p "$d" -c "$d/nginx.conf" -e "$d/error.log" >>"$OUT/nginx.log" 2>&1 &
	SERVER_PID=$!
	NGINX_MASTER=$SERVER_PID
	wait_port "127.0.0.1:$NCHAN_PORT"
	LOAD_PID=$(pgrep -P "$NGINX_MASTER" | head -1)
	if [ -z "$LOAD_PID" ]; then
		echo "compare.sh: no nginx worker process" >&2
		return 1
	fi
}

# run LABEL SERVER pushload-args...
run() {
	local label=$1 server=$2 port
	shift 2
	case $server in
	pushd) start_pushd; port=$PUSHD_PORT ;;
	nchan) start_nchan; port=$NCHAN_PORT ;;
	esac
	log "$label on $server: pushload $*"
	local line
	line=$($PIN_LOAD "$PUSHLOAD" -server "$server" -label "$label" -pid "$LOAD_PID" \
		-pub "http://127.0.0.1:$port/pub?id={ch}" -sub "http://127.0.0.1:$port/sub?id={ch}" \
		"$@" 2>>"$OUT/pushload.log") || true
	stop_server
	if [ "$label" = warmup ]; then
		return # discarded
	fi
	if [ -n "$line" ]; then
		echo "$line" >>"$RESULTS"
		echo "$line" | "$PUSHLOAD" report | tail -n +3 >&2 || true
	else
		log "$label on $server: no result (see $OUT/pushload.log)"
	fi
}

wanted() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }

MACHINE="$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/^Mem:/{print $2}') GiB, Linux $(uname -r), $(go version | cut -d' ' -f3), $(nginx -v 2>&1 | cut -d' ' -f3), Nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan 2>/dev/null || echo '?'), open files hard limit $(ulimit -Hn)"
START_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
log "$MACHINE"
log "load average at start: $START_LOAD"
if awk -v l="${START_LOAD%% *}" 'BEGIN { exit !(l > 1.0) }'; then
	log "warning: the machine is busy (load average ${START_LOAD%% *}); figures will be noisy"
fi
log "N=$N R=$R M=$M hold=$HOLD pubtime=$PUBTIME; results in $RESULTS"
# A warm-up round, discarded: the first run after the builds is often slow
# for either server (in four comparisons the first idle-ws run of pushd took
# 175-247 ms where the others took 105-163 ms).
if [ "$WARMUP" -gt 0 ]; then
	for server in pushd nchan; do
		run warmup $server -mode idle -transport ws -n "$N" -settle 0s
	done
fi
for rep in $(seq "$R"); do
	for server in pushd nchan; do
		if wanted idle-ws; then run idle-ws $server -mode idle -transport ws -n "$N"; fi
	done
	for server in pushd nchan; do
		if wanted idle-lp; then run idle-lp $server -mode idle -transport longpoll -n "$N"; fi
	done
	for server in pushd nchan; do
		if wanted fanout-ws; then run fanout-ws $server -mode fanout -transport ws -n "$N" -m "$M"; fi
	done
	for server in pushd nchan; do
		if wanted pubrate; then run pubrate $server -mode pubrate -c 50 -channels 1000 -duration "$PUBTIME"; fi
	done
	for server in pushd nchan; do
		if wanted lp10; then run lp10 $server -mode fanout -transport longpoll -n "$N" -m 100 -rate 10; fi
	done
	if [ "$HOLD" -gt 0 ]; then
		for server in pushd nchan; do
			if wanted hold; then run hold $server -mode idle -transport ws -n "$HOLD" -per-worker 10000; fi
		done
	fi
done

{
	echo "pushd vs Nchan, finished $(date -u +%Y-%m-%dT%H:%M:%SZ); load average at start $START_LOAD, at end $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "$MACHINE"
	echo "N=$N R=$R M=$M hold=$HOLD; server pinned to core 0, load tool to core 1; (k) = runs behind each median"
	echo
	"$PUSHLOAD" report "$RESULTS"
} | tee "$OUT/table.md"
