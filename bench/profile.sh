#!/usr/bin/env bash
# bench/profile.sh: pprof profiles of pushd under bench/compare.sh's loads.
#
# Starts pushd (pinned to core 0, -buffer 20, -pprof on a loopback port) once
# per load, runs the load with pushload (pinned to core 1), and saves:
#   heap-ws.prof, heap-lp.prof   in-use heap with N idle subscribers held
#   memstats-*.txt               the runtime's MemStats at the same moment
#   cpu-fanout-ws.prof           CPU while N WebSocket subscribers connect and
#                                get 100 messages back to back
#   cpu-pubrate.prof             CPU under 50 concurrent publishers
# with a text top for each (go tool pprof -top). Stops what it started.
#
# Usage: bench/profile.sh [-n 10000] [-pushd-src DIR] [-out DIR]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
N=10000 PUSHD_SRC=$ROOT OUT=""
PORT=${PUSHD_PORT:-18080} PPROF_PORT=${PPROF_PORT:-18086}
while [ $# -gt 0 ]; do
	case $1 in
	-n) N=$2; shift 2 ;;
	-pushd-src) PUSHD_SRC=$(cd "$2" && pwd); shift 2 ;;
	-out) OUT=$2; shift 2 ;;
	-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "profile.sh: unknown option $1 (see -h)" >&2; exit 2 ;;
	esac
done
TMP=$(mktemp -d /tmp/push-profile.XXXXXX)
OUT=${OUT:-$TMP/out}
mkdir -p "$OUT"
PID="" LOADPID=""
cleanup() {
	for p in $LOADPID $PID; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	rm -rf "$TMP/bin"
	echo "profile.sh: profiles in $OUT" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

PIN0="" PIN1=""
if [ "$(nproc)" -ge 2 ]; then PIN0="taskset -c 0" PIN1="taskset -c 1"; fi
mkdir -p "$TMP/bin"
(cd "$PUSHD_SRC" && go build -o "$TMP/bin/pushd" ./cmd/pushd)
(cd "$ROOT" && go build -o "$TMP/bin/pushload" ./cmd/pushload)
PPROF=http://127.0.0.1:$PPROF_PORT/debug/pprof
URLS=(-pub "http://127.0.0.1:$PORT/pub?id={ch}" -sub "http://127.0.0.1:$PORT/sub?id={ch}")

start() {
	$PIN0 "$TMP/bin/pushd" -addr "127.0.0.1:$PORT" -pprof "127.0.0.1:$PPROF_PORT" -buffer 20 \
		-subscriber-timeout 0 -shutdown-timeout 1s -log-level warn >>"$OUT/pushd.log" 2>&1 &
	PID=$!
	for _ in $(seq 100); do curl -sf -o /dev/null "$PPROF/" && return 0; sleep 0.1; done
	echo "profile.sh: pushd did not start (see $OUT/pushd.log)" >&2
	exit 1
}
stop() {
	kill "$PID" 2>/dev/null || true
	wait "$PID" 2>/dev/null || true
	PID=""
}
subscribers() {
	curl -sf "http://127.0.0.1:$PORT/status" | awk '/^subscribers:/{print $2}'
}

for t in ws lp; do
	tr=$t
	[ $t = lp ] && tr=longpoll
	start
	$PIN1 "$TMP/bin/pushload" -mode idle -transport $tr -n "$N" -settle 8s -pid "$PID" "${URLS[@]}" \
		>>"$OUT/pushload.jsonl" 2>>"$OUT/pushload.log" &
	LOADPID=$!
	for _ in $(seq 600); do [ "$(subscribers)" -ge "$N" ] 2>/dev/null && break; sleep 0.1; done
	sleep 2
	curl -sf -o "$OUT/heap-$t.prof" "$PPROF/heap?gc=1"
	curl -sf "$PPROF/heap?debug=1" | grep -E '^# (HeapInuse|HeapAlloc|HeapSys|HeapReleased|Stack|Sys|NumGC) ' >"$OUT/memstats-$t.txt" || true
	grep -E 'VmRSS' "/proc/$PID/status" >>"$OUT/memstats-$t.txt" || true
	echo "goroutines: $(curl -sf "$PPROF/goroutine?debug=1" | head -1)" >>"$OUT/memstats-$t.txt"
	wait "$LOADPID" || true
	LOADPID=""
	stop
	go tool pprof -sample_index=inuse_space -top -nodecount=20 "$TMP/bin/pushd" "$OUT/heap-$t.prof" >"$OUT/heap-$t.txt" 2>/dev/null
done

start
curl -sf -o "$OUT/cpu-fanout-ws.prof" "$PPROF/profile?seconds=15" &
CURLPID=$!
$PIN1 "$TMP/bin/pushload" -mode fanout -transport ws -n "$N" -m 100 -pid "$PID" "${URLS[@]}" \
	>>"$OUT/pushload.jsonl" 2>>"$OUT/pushload.log" || true
wait "$CURLPID" || true
stop
go tool pprof -top -nodecount=30 "$TMP/bin/pushd" "$OUT/cpu-fanout-ws.prof" >"$OUT/cpu-fanout-ws.txt" 2>/dev/null
go tool pprof -top -cum -nodecount=40 "$TMP/bin/pushd" "$OUT/cpu-fanout-ws.prof" >"$OUT/cpu-fanout-ws-cum.txt" 2>/dev/null

start
curl -sf -o "$OUT/cpu-pubrate.prof" "$PPROF/profile?seconds=4" &
CURLPID=$!
$PIN1 "$TMP/bin/pushload" -mode pubrate -c 50 -channels 1000 -duration 5s -pid "$PID" "${URLS[@]}" \
	>>"$OUT/pushload.jsonl" 2>>"$OUT/pushload.log" || true
wait "$CURLPID" || true
stop
go tool pprof -top -nodecount=30 "$TMP/bin/pushd" "$OUT/cpu-pubrate.prof" >"$OUT/cpu-pubrate.txt" 2>/dev/null
go tool pprof -top -cum -nodecount=40 "$TMP/bin/pushd" "$OUT/cpu-pubrate.prof" >"$OUT/cpu-pubrate-cum.txt" 2>/dev/null

cp "$TMP/bin/pushd" "$OUT/pushd.bin" # the profiles need the binary that made them
for f in "$OUT"/memstats-*.txt "$OUT"/heap-*.txt "$OUT"/cpu-*.txt; do
	echo "== $(basename "$f")"
	head -32 "$f"
done
