#!/usr/bin/env python3
"""QR-code login with a Python back end (standard library only) and pushd.

The PC page waits on a per-login push channel; the phone's confirm makes this
back end publish to it. pushd serves the subscribers on its public address and
the publisher on an internal one (-pub-addr); both sides present tokens this
back end signs (-subscribe-key, -publish-key; see docs/auth.md).

    openssl rand -hex 32 > sub.key; openssl rand -hex 32 > pub.key
    pushd -addr 127.0.0.1:8080 -pub-addr 127.0.0.1:8081 \\
          -subscribe-key @sub.key -publish-key @pub.key \\
          -allow-origin http://127.0.0.1:8083
    python3 app.py --addr 127.0.0.1:8083 --sub-key-file sub.key --pub-key-file pub.key

Then open http://127.0.0.1:8083/ on the PC and the link it shows on a phone.
"""

import argparse
import base64
import hashlib
import hmac
import html
import http.cookies
import json
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOGIN_TTL = 300  # seconds a QR code and its subscriber token are valid
USER = "alice"   # the phone's user (a real app has its own login there)


def b64url(b: bytes) -> bytes:
    return base64.urlsafe_b64encode(b).rstrip(b"=")


def mint(key: bytes, channels, ttl: int) -> str:
    """A pushd token (JWT, HS256) granting channels for ttl seconds."""
    head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = b64url(json.dumps({"channels": channels, "exp": int(time.time()) + ttl}).encode())
    sig = b64url(hmac.new(key, head + b"." + claims, hashlib.sha256).digest())
    return (head + b"." + claims + b"." + sig).decode()


class App:
    def __init__(self, public, internal, sub_key, pub_key):
        self.public, self.internal = public.rstrip("/"), internal.rstrip("/")
        self.sub_key, self.pub_key = sub_key, pub_key
        self.lock = threading.Lock()
        self.logins = {}    # QR token -> login
        self.codes = {}     # one-time code -> QR token
        self.sessions = {}  # session cookie -> user

    def new_login(self, browser):
        qr = secrets.token_urlsafe(16)
        login = {"channel": "login-" + secrets.token_hex(16), "browser": browser,
                 "state": "pending", "expires": time.time() + LOGIN_TTL}
        with self.lock:
            self.logins[qr] = login
        return qr, login

    def publish(self, channel, event):
        """POST event to pushd's internal publisher, with a publisher token."""
        req = urllib.request.Request(
            self.internal + "/pub?id=" + channel, data=json.dumps(event).encode(), method="POST",
            headers={"Content-Type": "application/json",
                     "Authorization": "Bearer " + mint(self.pub_key, [channel], 60)})
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status


PC_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Log in</title>
<style>body{font:16px system-ui;margin:3em auto;max-width:40em}code{word-break:break-all}</style></head>
<body data-channel="%(channel)s">
<section id="waiting"><h1>Log in with your phone</h1>
<p>Open this link on your phone (a real app shows it as a QR code):</p>
<p><a id="phone-link" href="%(phone)s">%(phone)s</a></p>
<p id="status">Connecting...</p></section>
<section id="loggedin" hidden><h1>You are logged in</h1><p>as <b id="user"></b></p></section>
<script>
const cfg = %(cfg)s;
const status = document.querySelector("#status");
async function done(ev) {
  if (ev.event !== "confirmed") { status.textContent = "Refused on the phone."; return; }
  const r = await fetch("/login/exchange", {method: "POST", body: JSON.stringify({code: ev.code})});
  if (!r.ok) { status.textContent = "Login failed: " + r.status; return; }
  const me = await r.json();
  document.querySelector("#waiting").hidden = true;
  document.querySelector("#user").textContent = me.user;
  document.querySelector("#loggedin").hidden = false;
}
const url = cfg.pushd + "/sub?id=" + encodeURIComponent(cfg.channel) + "&token=" + cfg.token;
const transport = new URLSearchParams(location.search).get("transport") || "eventsource";
document.body.dataset.transport = transport;
if (transport === "eventsource") {
  const es = new EventSource(url);
  es.onopen = () => { status.textContent = "Waiting for your phone..."; document.body.dataset.subscribed = "1"; };
  es.onmessage = (m) => { es.close(); done(JSON.parse(m.data)); };
  es.onerror = () => { status.textContent = "Connection lost; retrying..."; };
} else { // long-poll: walk the channel with If-Modified-Since / If-None-Match
  (async () => {
    let lm = "", etag = "";
    for (;;) {
      const h = lm ? {"If-Modified-Since": lm, "If-None-Match": etag} : {};
      document.body.dataset.subscribed = "1";
      status.textContent = "Waiting for your phone...";
      let r;
      try { r = await fetch(url, {headers: h, cache: "no-store"}); }
      catch (e) { await new Promise(ok => setTimeout(ok, 1000)); continue; }
      if (r.headers.get("Last-Modified")) { lm = r.headers.get("Last-Modified"); etag = r.headers.get("Etag"); }
      if (r.status === 200) { done(await r.json()); return; }
      if (r.status !== 304 && r.status !== 408) { status.textContent = "Subscription refused: " + r.status; return; }
    }
  })();
}
</script></body></html>
"""

PHONE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>%(title)s</title>
<style>body{font:18px system-ui;margin:2em}</style></head>
<body><h1 id="title">%(title)s</h1><p id="text">%(text)s</p>%(form)s</body></html>
"""


class Handler(BaseHTTPRequestHandler):
    app: App = None
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def cookies(self):
        c = http.cookies.SimpleCookie()
        try:
            c.load(self.headers.get("Cookie", ""))
        except http.cookies.CookieError:
            pass
        return {k: v.value for k, v in c.items()}

    def send(self, status, body, ctype="text/html; charset=utf-8", cookies=()):
        b = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(b)))
        self.send_header("Cache-Control", "no-store")
        for c in cookies:
            self.send_header("Set-Cookie", c)
        self.end_headers()
        self.wfile.write(b)

    def phone(self, status, title, text, form=""):
        self.send(status, PHONE_PAGE % {"title": html.escape(title), "text": html.escape(text), "form": form})

    def do_GET(self):
        app = self.app
        if self.path == "/" or self.path.startswith("/?"):
            browser = self.cookies().get("pyqr_browser") or secrets.token_urlsafe(16)
            qr, login = app.new_login(browser)
            host = self.headers.get("Host", "")
            phone = "http://%s/m/%s" % (host, qr)
            cfg = {"pushd": app.public, "channel": login["channel"],
                   "token": mint(app.sub_key, [login["channel"]], LOGIN_TTL)}
            page = PC_PAGE % {"channel": html.escape(login["channel"]), "phone": html.escape(phone),
                              "cfg": json.dumps(cfg).replace("<", "\\u003c")}
            self.send(200, page, cookies=["pyqr_browser=%s; Path=/; HttpOnly; SameSite=Lax" % browser])
        elif self.path.startswith("/m/"):
            login = self.login()
            if login is None:
                return
            form = ('<form method="post"><button id="confirm">Log in as %s</button></form>' % USER)
            self.phone(200, "Log in?", "A computer asks to log in as %s." % USER, form)
        elif self.path == "/me":
            user = app.sessions.get(self.cookies().get("pyqr_session", ""))
            self.send(200 if user else 401, json.dumps({"user": user}), "application/json")
        else:
            self.send(404, "Not found.", "text/plain")

    def login(self):
        """The pending login of the QR token in the path, or None (answered)."""
        login = self.app.logins.get(self.path[len("/m/"):])
        if login is None:
            self.phone(404, "Unknown QR code", "This link is not a login.")
        elif login["state"] != "pending":
            self.phone(410, "QR code already used", "This QR code was already used: show a new one on the computer.")
        elif time.time() > login["expires"]:
            self.phone(410, "QR code expired", "This QR code expired: show a new one on the computer.")
        else:
            return login
        return None

    def do_POST(self):
        app = self.app
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if 0 < n <= 4096 else b""
        if self.path.startswith("/m/"):
            with app.lock:  # one confirm per QR code
                login = self.login()
                if login is None:
                    return
                login["state"] = "confirmed"
                code = secrets.token_urlsafe(16)
                app.codes[code] = self.path[len("/m/"):]
            try:
                app.publish(login["channel"], {"event": "confirmed", "code": code})
            except (urllib.error.URLError, OSError) as e:
                sys.stderr.write("publish failed: %s\n" % e)
                self.phone(502, "Push server unreachable", "Try again.")
                return
            self.phone(200, "Done", "You can go back to the computer.")
        elif self.path == "/login/exchange":
            try:
                code = json.loads(body or b"{}").get("code", "")
            except ValueError:
                code = ""
            with app.lock:
                qr = app.codes.pop(code, None)
                login = app.logins.get(qr) if qr else None
            if login is None or login["browser"] != self.cookies().get("pyqr_browser"):
                self.send(403, json.dumps({"error": "not your login"}), "application/json")
                return
            sid = secrets.token_urlsafe(16)
            app.sessions[sid] = USER
            self.send(200, json.dumps({"user": USER}), "application/json",
                      cookies=["pyqr_session=%s; Path=/; HttpOnly; SameSite=Lax" % sid])
        else:
            self.send(404, "Not found.", "text/plain")


def read_key(path):
    with open(path, "rb") as f:
        return f.read().strip()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--addr", default="127.0.0.1:8083", help="host:port to listen on (port 0: any)")
    p.add_argument("--pushd", default="http://127.0.0.1:8080", help="pushd's public address (subscribers)")
    p.add_argument("--pushd-pub", default="http://127.0.0.1:8081", help="pushd's -pub-addr (publisher)")
    p.add_argument("--sub-key-file", required=True, help="pushd's -subscribe-key file")
    p.add_argument("--pub-key-file", required=True, help="pushd's -publish-key file")
    a = p.parse_args()
    host, port = a.addr.rsplit(":", 1)
    Handler.app = App(a.pushd, a.pushd_pub, read_key(a.sub_key_file), read_key(a.pub_key_file))
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.daemon_threads = True
    print("pyqrlogin listening on http://%s:%d/" % srv.server_address[:2], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
