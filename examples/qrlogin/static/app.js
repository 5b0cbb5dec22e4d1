"use strict";
// The computer's side of the QR login: start a login, show its QR code, wait
// on its push channel, redeem the one-time code for a session cookie.
const $ = (s) => document.querySelector(s);
const transport = new URLSearchParams(location.search).get("transport") || "auto";
let sub = null;
let tick = null;

function show(id) {
  for (const s of ["waiting", "expired", "loggedin"]) $("#" + s).hidden = s !== id;
}
function fail(text) {
  $("#error").textContent = text;
  $("#error").hidden = false;
}
function stop() {
  if (sub) sub.close();
  sub = null;
  clearInterval(tick);
}
function loggedIn(user) {
  stop();
  $("#user").textContent = user;
  show("loggedin");
}
function expired(why) {
  stop();
  $("#expired-why").textContent = why;
  show("expired");
}

async function start() {
  $("#error").hidden = true;
  const res = await fetch("/login", { method: "POST" });
  if (!res.ok) return fail(await res.text());
  const login = await res.json();
  $("#qr").src = login.qr;
  $("#qr-link").href = login.url;
  $("#qr-link").textContent = login.url;
  $("#qr-link").dataset.url = login.url; // the phone URL, also read by the tests
  document.body.dataset.channel = login.channel;
  show("waiting");

  const deadline = Date.now() + login.expiresIn * 1000;
  tick = setInterval(() => {
    const left = Math.round((deadline - Date.now()) / 1000);
    if (left <= 0) {
      const s = login.expiresIn;
      return expired("Codes are valid for " + (s >= 120 ? Math.round(s / 60) + " minutes." : s + (s === 1 ? " second." : " seconds.")));
    }
    $("#countdown").textContent = "Valid for " + left + " s";
  }, 1000);

  sub = pushSubscribe("/sub?id=" + encodeURIComponent(login.channel), {
    transport,
    onstate: (s) => {
      if (sub) $("#transport").textContent = sub.transport;
      $("#state").textContent = s === "closed" ? "done" : s === "retrying" ? "reconnecting…" : "waiting for your phone";
    },
    onmessage: async (data) => {
      const m = JSON.parse(data);
      if (m.event === "denied") return expired("The login was refused on the phone.");
      if (m.event !== "confirmed") return;
      stop();
      const r = await fetch("/login/exchange", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ channel: login.channel, code: m.code }),
      });
      if (!r.ok) return fail(await r.text());
      loggedIn((await r.json()).user);
    },
    onerror: (status, text) => fail("Waiting for the phone failed (" + status + "): " + text),
  });
}

$("#transport").textContent = transport;
$("#again").onclick = start;
$("#logout").onclick = async () => {
  await fetch("/logout", { method: "POST" });
  start();
};
(async () => {
  const me = await fetch("/me");
  if (me.ok) loggedIn((await me.json()).user);
  else start();
})();
