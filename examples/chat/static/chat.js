"use strict";
// The chat page: join a room, show its history and new messages as they are
// pushed, send messages to the app.
const $ = (s) => document.querySelector(s);
const params = new URLSearchParams(location.search);
const transport = params.get("transport") || "auto";
let sub = null;
let room = "";
let nick = "";
let refresh = null;
let counted = false; // the member count was asked for since the subscription opened

function showError(text) {
  $("#error").textContent = text;
  $("#error").hidden = !text;
}

function add(m) {
  const li = document.createElement("li");
  if (m.nick === nick) li.className = "mine";
  const who = document.createElement("span");
  who.className = "nick";
  who.textContent = m.nick;
  const text = document.createElement("span");
  text.className = "text";
  text.textContent = m.text; // text, never HTML
  const when = document.createElement("time");
  when.dateTime = m.time;
  when.textContent = new Date(m.time).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  li.append(who, text, when);
  const list = $("#messages");
  const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 40;
  list.append(li);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

function setMembers(n) {
  $("#members").textContent = n + " online";
  $("#members").dataset.count = n;
}

async function members() {
  const res = await fetch("/rooms/" + room);
  // This page is in the room even before the server counts its
  // subscription (a long-poll held on an empty room): at least 1.
  if (res.ok) setMembers(Math.max(1, (await res.json()).members));
}

function join(r, n) {
  room = r;
  nick = n;
  localStorage.setItem("chat.nick", nick);
  history.replaceState(null, "", "?room=" + encodeURIComponent(room) + (params.has("transport") ? "&transport=" + transport : ""));
  $("#room-name").textContent = room;
  $("#me").textContent = nick;
  $("#messages").replaceChildren();
  $("#join").hidden = true;
  $("#chat").hidden = false;
  document.body.dataset.room = room;
  showError("");
  sub = pushSubscribe("/sub?room=" + encodeURIComponent(room), {
    transport,
    onstate: (s) => {
      if (sub) $("#transport").textContent = sub.transport;
      $("#state").textContent = s;
      // Subscribed: the server counts this page now; show the count at
      // once rather than at the next refresh.
      if (s === "open" && sub && !counted) {
        counted = true;
        members();
      }
    },
    onmessage: (data) => {
      const m = JSON.parse(data);
      add(m);
      if (m.members) setMembers(m.members);
    },
    onerror: (status, text) => showError("Disconnected (" + status + "): " + text),
  });
  counted = false;
  members();
  refresh = setInterval(members, 5000);
  $("#text").focus();
}

function leave() {
  if (sub) sub.close();
  sub = null;
  clearInterval(refresh);
  $("#chat").hidden = true;
  $("#join").hidden = false;
  delete document.body.dataset.room;
}

$("#join-form").onsubmit = (e) => {
  e.preventDefault();
  join($("#room").value.trim().toLowerCase(), $("#nick").value.trim());
};
$("#leave").onclick = leave;
$("#send-form").onsubmit = async (e) => {
  e.preventDefault();
  const input = $("#text");
  const text = input.value.trim();
  if (!text) return;
  const res = await fetch("/rooms/" + room + "/messages", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ nick, text }),
  });
  if (res.ok) {
    input.value = "";
    showError("");
  } else {
    showError(await res.text());
  }
};
$("#transport").textContent = transport;

$("#nick").value = localStorage.getItem("chat.nick") || "";
if (params.get("room")) $("#room").value = params.get("room");
if (params.get("room") && $("#nick").value) join(params.get("room"), $("#nick").value);
else $("#join").hidden = false;
