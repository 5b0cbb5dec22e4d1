#!/usr/bin/env python3
"""A classic NHPM long-poll subscriber, standard library only.

It asks GET /sub?id=CHANNEL, prints each message body, and sends the answer's
Last-Modified back as If-Modified-Since and its Etag as If-None-Match, so the
next request returns the next message: none skipped, none repeated.

    python3 examples/nhpm_client.py http://localhost:8080 news
    python3 examples/nhpm_client.py --count 3 http://localhost:8080 news
"""

import argparse
import email.parser
import sys
import time
import urllib.error
import urllib.parse
import urllib.request


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", nargs="?", default="http://localhost:8080",
                    help="server URL (default http://localhost:8080)")
    ap.add_argument("channel", nargs="?", default="news", help="channel id (default news)")
    ap.add_argument("--count", type=int, default=0,
                    help="stop after this many messages (default: never)")
    args = ap.parse_args()

    url = args.base.rstrip("/") + "/sub?" + urllib.parse.urlencode({"id": args.channel})
    last_modified = etag = None
    received = 0
    while args.count == 0 or received < args.count:
        req = urllib.request.Request(url)
        if last_modified:
            req.add_header("If-Modified-Since", last_modified)
        if etag:
            req.add_header("If-None-Match", etag)
        try:
            with urllib.request.urlopen(req) as resp:  # held until a message comes
                bodies = split_catch_up(resp.headers.get("Content-Type", ""), resp.read())
                last_modified = resp.headers.get("Last-Modified", last_modified)
                etag = resp.headers.get("Etag", etag)
        except urllib.error.HTTPError as e:
            # 304/408: the server's subscriber timeout; 503: it is shutting
            # down. Keep the position (the answer carries it) and ask again.
            if e.code in (304, 408, 503):
                last_modified = e.headers.get("Last-Modified", last_modified)
                etag = e.headers.get("Etag", etag)
                if e.code == 503:
                    time.sleep(float(e.headers.get("Retry-After", "1")))
                continue
            if e.code == 410:
                print("channel deleted", file=sys.stderr)
                return 0
            print(f"subscriber error {e.code}: {e.read().decode(errors='replace')}", file=sys.stderr)
            return 1
        except urllib.error.URLError as e:
            print(f"cannot reach {url}: {e.reason}; retrying in 1s", file=sys.stderr)
            time.sleep(1)
            continue
        for body in bodies:
            print(body.decode("utf-8", errors="replace"), flush=True)
            received += 1
    return 0


def split_catch_up(content_type, body):
    """Returns the message bodies of one answer.

    A server with long-poll catch-up (pushd -longpoll-catchup, Nchan's
    nchan_longpoll_multipart_response; both off by default) answers with every waiting message at
    once as multipart/mixed; its Last-Modified/Etag are those of the last part.
    """
    if not content_type.lower().startswith("multipart/mixed"):
        return [body]
    msg = email.parser.BytesParser().parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    return [part.get_payload(decode=True) or b"" for part in msg.get_payload()]


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
