// push.js: a small browser subscriber for github.com/pushhub/push (the
// NHPM/Nchan subscriber protocol). No dependencies; copy it as it is.
//
//   const sub = pushSubscribe("/sub?id=room", {
//     transport: "auto",              // or "longpoll", "eventsource", "websocket"
//     onmessage(data, meta) { ... },  // data: the payload as text; meta: {id, contentType}
//     onerror(status, text) { ... },  // the subscription ended: 403, 404, 409, 410, ...
//     onstate(state) { ... },         // "connecting", "open", "retrying", "closed"
//     onmissed(meta) { ... },         // messages were lost before the next one (meta.id: the
//                                     // position before the gap, when the server says it)
//     credentials: true,              // send cookies cross-origin (the server must allow the
//                                     // page's origin: pushd -allow-origin)
//   });
//   sub.close();
//
// "auto" (the default) uses a WebSocket and falls back to long-poll when the
// server or a proxy refuses the upgrade. Long-poll walks the channel with If-Modified-Since/If-None-Match (the
// position the server answered with), so every buffered message arrives once,
// in order, oldest first. EventSource and WebSocket resume from the last id
// seen (last_event_id), so switching or reconnecting loses nothing.
"use strict";

function pushSubscribe(url, opts) {
  opts = opts || {};
  const onmessage = opts.onmessage || function () {};
  const onerror = opts.onerror || function () {};
  const onstate = opts.onstate || function () {};
  const onmissed = opts.onmissed || function () {};
  const credentials = opts.credentials ? "include" : "same-origin";
  let transport = opts.transport || "auto";
  let closed = false;
  let lastID = "";     // "T:G" of the last message received
  let lastModified = ""; // long-poll position
  let etag = "";
  let retry = 0;
  let abort = null;     // long-poll AbortController
  let es = null;        // EventSource
  let ws = null;        // WebSocket
  let timer = null;
  let opened = false;   // the WebSocket opened at least once

  function withID(u) {
    if (!lastID) return u;
    return u + (u.indexOf("?") < 0 ? "?" : "&") + "last_event_id=" + encodeURIComponent(lastID);
  }
  function again(fn) { // reconnect with a capped exponential back-off
    if (closed) return;
    onstate("retrying");
    const wait = Math.min(30000, 500 * Math.pow(2, retry++));
    timer = setTimeout(fn, wait);
  }
  function end(status, text) {
    if (closed) return;
    close();
    onerror(status, text);
  }

  async function longpoll() {
    onstate("connecting");
    while (!closed) {
      const headers = {};
      if (lastModified) {
        headers["If-Modified-Since"] = lastModified;
        if (etag) headers["If-None-Match"] = etag;
      }
      abort = new AbortController();
      let res, body;
      try {
        res = await fetch(url, { headers, cache: "no-store", credentials, signal: abort.signal });
        body = await res.text();
      } catch (e) {
        if (!closed) again(longpoll);
        return;
      }
      if (closed) return;
      const lm = res.headers.get("Last-Modified");
      if (lm) { lastModified = lm; etag = res.headers.get("Etag") || ""; }
      if (res.status === 200) {
        retry = 0;
        onstate("open");
        if (res.headers.get("X-Push-Missed") === "true") onmissed({ id: lastID });
        lastID = Math.floor(Date.parse(lastModified) / 1000) + ":" + etag;
        const type = res.headers.get("Content-Type") || "";
        const mp = /^multipart\/mixed;\s*boundary="?([^";]+)/i.exec(type);
        if (!mp) {
          onmessage(body, { id: lastID, contentType: type });
          continue;
        }
        // Several messages at once (the server's long-poll catch-up):
        // "--B\n" [Last-Modified: D\nEtag: G\n] [Content-Type: C\n] "\n"
        // payload "\n" ... "--B--\n". Each part's Last-Modified/Etag is
        // its id (the server writes them for one-channel subscriptions).
        const parts = body.split("--" + mp[1]);
        for (let i = 1; i < parts.length - 1 && !closed; i++) {
          let part = parts[i].slice(1, -1); // the LFs around the part
          const h = {};
          for (let nl = part.indexOf("\n"); nl > 0; nl = part.indexOf("\n")) {
            const line = part.slice(0, nl), colon = line.indexOf(":");
            if (colon > 0) h[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
            part = part.slice(nl + 1);
          }
          part = part.slice(1); // the blank line before the payload
          let id = i === parts.length - 2 ? lastID : "";
          if (h["last-modified"] && h["etag"]) id = Math.floor(Date.parse(h["last-modified"]) / 1000) + ":" + h["etag"];
          onmessage(part, { id, contentType: h["content-type"] || "" });
        }
      } else if (res.status === 304 || res.status === 408) {
        onstate("open"); // nothing new in time: ask again from the same position
      } else if (res.status >= 500 || res.status === 429) {
        again(longpoll);
        return;
      } else {
        end(res.status, body);
        return;
      }
    }
  }

  function eventsource() {
    onstate("connecting");
    es = new EventSource(withID(url), { withCredentials: !!opts.credentials });
    es.addEventListener("missed", function () { onmissed({ id: lastID }); });
    es.onopen = function () { retry = 0; onstate("open"); };
    es.onmessage = function (e) {
      if (e.lastEventId) lastID = e.lastEventId;
      onmessage(e.data, { id: e.lastEventId, contentType: "" });
    };
    es.onerror = function () {
      if (closed) return;
      if (es.readyState === EventSource.CLOSED) { // refused (not a stream): try again later
        es = null;
        again(eventsource);
      } else {
        onstate("retrying"); // the browser reconnects by itself with Last-Event-ID
      }
    };
  }

  function websocket() {
    onstate("connecting");
    const u = new URL(withID(url), location.href);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    ws = new WebSocket(u.href, ["ws+meta.nchan"]);
    ws.onopen = function () {
      opened = true;
      if (transport === "auto") transport = "websocket";
      retry = 0;
      onstate("open");
    };
    ws.onmessage = async function (e) {
      let frame = typeof e.data === "string" ? e.data : await e.data.text();
      let meta = { id: "", contentType: "" };
      if (ws && ws.protocol === "ws+meta.nchan") { // "id: T:G\n[content-type: C\n]\npayload"
        const cut = frame.indexOf("\n\n");
        const head = cut < 0 ? frame : frame.slice(0, cut);
        frame = cut < 0 ? "" : frame.slice(cut + 2);
        for (const line of head.split("\n")) {
          if (line.startsWith("id: ")) meta.id = line.slice(4);
          else if (line.startsWith("content-type: ")) meta.contentType = line.slice(14);
        }
        if (meta.contentType === "application/x-push-missed") { // a gap, not a message
          onmissed({ id: meta.id });
          return;
        }
        if (meta.id) lastID = meta.id;
      }
      onmessage(frame, meta);
    };
    ws.onclose = function (e) {
      ws = null;
      if (closed) return;
      if (transport === "auto" && !opened) { // no WebSocket here: long-poll
        transport = "longpoll";
        longpoll();
        return;
      }
      // The server closes with a reason like "410 Gone" (channel deleted) or
      // "409 Conflict" (concurrency policy): final. Anything else (timeout,
      // shutdown, network): reconnect and resume from the last id.
      const status = parseInt(e.reason, 10);
      if (status === 403 || status === 409 || status === 410) end(status, e.reason);
      else again(websocket);
    };
  }

  function close() {
    if (closed) return;
    closed = true;
    clearTimeout(timer);
    if (abort) abort.abort();
    if (es) es.close();
    if (ws) ws.close();
    onstate("closed");
  }

  if (transport === "auto" && !window.WebSocket) transport = "longpoll";
  const start = { auto: websocket, longpoll, eventsource, websocket }[transport] || longpoll;
  start();
  return { close, get transport() { return transport; }, get lastID() { return lastID; } };
}
