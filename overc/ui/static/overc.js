// OverC UI behaviour: local times, "12 s ago", the overview filter and live updates.
// Served from /ui/static (CSP forbids inline script). Everything works without it, only less live.
"use strict";
(function () {
  var POLL_MS = 1500;
  var etag = null;

  function ago(seconds) {
    var d = Math.abs(seconds), t;
    if (d < 90) t = Math.floor(d) + " s";
    else if (d < 5400) t = Math.floor(d / 60) + " min";
    else if (d < 172800) t = Math.floor(d / 3600) + " h";
    else t = Math.floor(d / 86400) + " d";
    return seconds < 0 ? "in " + t : t + " ago";
  }

  function localTimes(root) {
    var now = Date.now() / 1000;
    root.querySelectorAll("time[data-ts]").forEach(function (el) {
      var ts = parseFloat(el.getAttribute("data-ts"));
      var date = new Date(ts * 1000);
      if (el.getAttribute("data-format") === "full") {
        if (el.hasAttribute("data-done")) return;
        el.setAttribute("data-done", "1");
        el.textContent = date.toLocaleString();
      } else {
        el.textContent = ago(now - ts);
        el.title = date.toLocaleString();
      }
    });
    root.querySelectorAll("text[data-hour]:not([data-done])").forEach(function (el) {
      el.setAttribute("data-done", "1");
      var d = new Date(parseFloat(el.getAttribute("data-hour")) * 1000);
      var span = el.textContent.length > 5;
      el.textContent = span ? d.toLocaleDateString(undefined, {weekday: "short", day: "2-digit"})
        : d.toLocaleTimeString(undefined, {hour: "2-digit", minute: "2-digit"});
    });
  }

  function applyFilter() {
    var box = document.getElementById("filter");
    var servers = document.getElementById("servers");
    if (!box || !servers) return;
    var q = box.value.trim().toLowerCase();
    var state = servers.getAttribute("data-state-filter") || "";
    var cards = 0, visible = 0;
    servers.querySelectorAll("article.server").forEach(function (card) {
      var serverHit = !q || card.getAttribute("data-name").indexOf(q) >= 0;
      var shown = 0;
      card.querySelectorAll("a.tile").forEach(function (tile) {
        var ok = (serverHit || tile.getAttribute("data-name").indexOf(q) >= 0) &&
          (!state || tile.getAttribute("data-state") === state ||
           tile.getAttribute("data-last") === state);
        tile.parentNode.classList.toggle("hidden", !ok);
        if (ok) shown++;
      });
      var hidden = shown === 0 && !(serverHit && !state && q);
      card.classList.toggle("hidden", hidden);
      cards++;
      if (!hidden) visible++;
    });
    var none = document.getElementById("no-match");
    if (none) {
      none.classList.toggle("hidden", !(cards > 0 && visible === 0));
      var what = [];
      if (q) what.push("\u201c" + box.value.trim() + "\u201d");
      if (state) what.push("state " + state);
      document.getElementById("no-match-what").textContent = what.join(" in ");
    }
  }

  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    doc.querySelectorAll("[data-live]").forEach(function (fresh) {
      var old = document.getElementById(fresh.id);
      if (!old) return;
      // keep expanded history runs open across updates
      var open = [];
      old.querySelectorAll("details").forEach(function (d, i) { if (d.open) open.push(i); });
      old.replaceWith(fresh);
      var details = fresh.querySelectorAll("details");
      open.forEach(function (i) { if (details[i]) details[i].open = true; });
      localTimes(fresh);
    });
    applyFilter();
  }

  function setLive(ok) {
    var dot = document.getElementById("live-status");
    if (!dot) return;
    dot.classList.toggle("off", !ok);
    dot.textContent = ok ? "● live" : "● offline";
  }

  function poll() {
    var headers = {"X-OverC-Live": "1"};
    if (etag) headers["If-None-Match"] = etag;
    fetch(location.href, {headers: headers, credentials: "same-origin", cache: "no-store", redirect: "manual"})
      .then(function (res) {
        setLive(res.status === 200 || res.status === 304);
        if (res.status !== 200) return null;
        etag = res.headers.get("ETag");
        return res.text();
      })
      .then(function (html) { if (html) swap(html); })
      .catch(function () { setLive(false); })
      .then(function () { setTimeout(poll, POLL_MS); });
  }

  function fillTimezone() {
    document.querySelectorAll("input[name=tzoffset]").forEach(function (el) {
      el.value = String(new Date().getTimezoneOffset());
    });
    document.querySelectorAll("form.silence input[name=until]").forEach(function (el) {
      el.addEventListener("input", function () {
        var select = el.form.querySelector("select[name=duration]");
        if (select && el.value) select.value = "";
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    localTimes(document);
    fillTimezone();
    var box = document.getElementById("filter");
    if (box) box.addEventListener("input", applyFilter);
    applyFilter();
    if (document.querySelector("[data-live]")) {
      // The first poll learns the ETag; later ones are 304 until something changes.
      setTimeout(poll, POLL_MS);
    }
    setInterval(function () { localTimes(document); }, 1000);
  });
})();
