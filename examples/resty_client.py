#!/usr/bin/env python3
"""A resty.push page's calls, made against pushd -compat resty.

An OpenResty resty.push page publishes with a form-encoded POST whose field
`data` is the message (here with ?callback=cb, as a page posting through
JSONP does) and subscribes with a JSONP long-poll (<script
src="/sub?id=1&callback=cb">), which answers cb("<message>"); or, when
nothing came in time, cb("{\"status\":1,\"tips\":\"timeout\"}");. This
script makes exactly those requests, standard library only:

    pushd -compat resty -subscriber-timeout 10s &
    python3 examples/resty_client.py http://localhost:8080 1 2

It subscribes to the first channel, publishes "hello from resty.push" to
every channel named in one request (resty.push's channels = {1, 2}), prints
each answer as the page's script would see it, then waits once more to show
the timeout answer.
"""

import argparse
import json
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request


def jsonp_string(body, callback):
    """The string S of a JSONP answer callback(S);"""
    text = body.decode("utf-8")
    if not (text.startswith(callback + "(") and text.rstrip().endswith(");")):
        raise ValueError("not a JSONP answer: %r" % text)
    return json.loads(text[len(callback) + 1:text.rstrip().rindex(");")])


def subscribe(base, channel, callback="cb"):
    """One JSONP long-poll, as <script src=...> makes it; returns (Content-Type, S)."""
    url = base + "/sub?" + urllib.parse.urlencode({"id": channel, "callback": callback})
    with urllib.request.urlopen(url, timeout=120) as resp:
        return resp.headers.get("Content-Type"), jsonp_string(resp.read(), callback)


def publish(base, channels, message, callback="cb"):
    """A form-encoded POST with field data, to every channel at once."""
    query = urllib.parse.urlencode([("id", c) for c in channels] + [("callback", callback)])
    req = urllib.request.Request(
        base + "/pub?" + query,
        data=urllib.parse.urlencode({"data": message}).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.headers.get("Content-Type"), resp.read().decode("utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("base", nargs="?", default="http://localhost:8080")
    ap.add_argument("channels", nargs="*", default=["1", "2"])
    ap.add_argument("--message", default="hello from resty.push")
    args = ap.parse_args()
    base = args.base.rstrip("/")

    got = {}
    sub = threading.Thread(target=lambda: got.update(first=subscribe(base, args.channels[0])))
    sub.start()
    # The subscriber must be waiting before the publish, as a page's is:
    # poll the channel's info until pushd counts it.
    info_url = base + "/pub?" + urllib.parse.urlencode({"id": args.channels[0]})
    while True:
        try:
            with urllib.request.urlopen(urllib.request.Request(info_url, headers={"Accept": "application/json"})) as r:
                if json.load(r)["subscribers"] > 0:
                    break
        except urllib.error.HTTPError as e:
            if e.code != 404:
                raise
        sub.join(0.02)
    ctype, answer = publish(base, args.channels, args.message)
    print("publish:", ctype, answer)
    sub.join()
    ctype, message = got["first"]
    print("subscribe:", ctype, json.dumps(message))
    ctype, message = subscribe(base, args.channels[0])
    print("subscribe again:", ctype, json.dumps(message))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
