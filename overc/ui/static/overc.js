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

  // Live collections: the browser keeps them up to date, so the per-second refresh does not
  // search a page of 10,000 tiles each time.
  var TIMES = document.getElementsByTagName("time");
  var SVG_TEXTS = document.getElementsByTagName("text");

  function localTimes() {
    var now = Date.now() / 1000;
    Array.prototype.forEach.call(TIMES, function (el) {
      if (!el.hasAttribute("data-ts")) return;
      var ts = parseFloat(el.getAttribute("data-ts"));
      var date = new Date(ts * 1000);
      if (el.getAttribute("data-format") === "full") {
        if (el.hasAttribute("data-done")) return;
        el.setAttribute("data-done", "1");
        el.textContent = date.toLocaleString();
      } else {
        // every second: write only what changed (a write makes the browser restyle)
        var text = ago(now - ts);
        if (el.textContent !== text) el.textContent = text;
        if (el.__overcTitleTs !== ts) {
          el.title = date.toLocaleString();
          el.__overcTitleTs = ts;
        }
      }
    });
    Array.prototype.forEach.call(SVG_TEXTS, function (el) {
      if (!el.hasAttribute("data-hour") || el.hasAttribute("data-done")) return;
      el.setAttribute("data-done", "1");
      var d = new Date(parseFloat(el.getAttribute("data-hour")) * 1000);
      var span = el.textContent.length > 5;
      el.textContent = span ? d.toLocaleDateString(undefined, {weekday: "short", day: "2-digit"})
        : d.toLocaleTimeString(undefined, {hour: "2-digit", minute: "2-digit"});
    });
  }

  var filtered = false;

  // A tile's service name: its own text (the state and the marks are in child elements).
  function tileName(tile) {
    var name = "";
    Array.prototype.forEach.call(tile.childNodes, function (n) {
      if (n.nodeType === 3) name += n.nodeValue;
    });
    return name.trim();
  }

  function applyFilter() {
    var box = document.getElementById("filter");
    var servers = document.getElementById("servers");
    if (!box || !servers) return;
    var q = box.value.trim().toLowerCase();
    var state = servers.getAttribute("data-state-filter") || "";
    // No filter and nothing hidden by an earlier one: nothing to do (10,000 tiles cost).
    if (!q && !state && !filtered) return;
    filtered = !!(q || state);
    var cards = 0, visible = 0;
    servers.querySelectorAll("article.server").forEach(function (card) {
      var serverHit = !q || card.getAttribute("data-name").indexOf(q) >= 0;
      var shown = 0;
      card.querySelectorAll("a.tile").forEach(function (tile) {
        if (tile.__overcName === undefined) tile.__overcName = tileName(tile).toLowerCase();
        var ok = (serverHit || tile.__overcName.indexOf(q) >= 0) &&
          (!state || tile.getAttribute("data-state") === state ||
           tile.getAttribute("data-last") === state);
        tile.classList.toggle("hidden", !ok);
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

  // -- live updates: merge the fresh page into the live regions, changing only what changed --
  // Elements are matched by identity (data-key, id, or a link's href), never by position, so
  // the focused link, an open history row and the scroll position survive an update.

  function keyOf(node) {
    if (node.nodeType !== 1) return null;
    return node.getAttribute("data-key") || node.id ||
      (node.tagName === "A" ? "href:" + node.getAttribute("href") : null);
  }

  // What the server sent, ignoring what this script itself changes (relative times, labels).
  function signature(node) {
    if (node.nodeType !== 1) return node.nodeType + ":" + node.nodeValue;
    var copy = node.cloneNode(true);
    copy.querySelectorAll("time[data-ts], text[data-hour]").forEach(function (el) {
      el.textContent = "";
      el.removeAttribute("data-done");
      if (el.tagName.toLowerCase() === "time") el.removeAttribute("title");
    });
    copy.querySelectorAll("details[open]").forEach(function (el) { el.removeAttribute("open"); });
    if (copy.tagName === "DETAILS") copy.removeAttribute("open");
    copy.classList.remove("hidden");  // the filter's, not the server's
    copy.querySelectorAll(".hidden").forEach(function (el) { el.classList.remove("hidden"); });
    return copy.outerHTML;
  }

  // An element's signature is computed once (the first time an update reaches it) and kept;
  // the big parts (a region, a server card, a table row, a history run) are compared whole, so
  // an update walks only into what changed.
  function signatureOf(node) {
    if (node.__overcSig === undefined) node.__overcSig = signature(node);
    return node.__overcSig;
  }

  function comparedWhole(node) {
    return node.tagName === "ARTICLE" || node.tagName === "TR" ||
      (node.tagName === "LI" && node.querySelector("details") !== null);
  }

  function syncAttributes(old, fresh) {
    var time = old.tagName === "TIME";
    var keep = {open: old.tagName === "DETAILS", "data-done": time, title: time};
    Array.prototype.slice.call(old.attributes).forEach(function (a) {
      if (!fresh.hasAttribute(a.name) && !keep[a.name]) old.removeAttribute(a.name);
    });
    Array.prototype.slice.call(fresh.attributes).forEach(function (a) {
      if (old.getAttribute(a.name) !== a.value) old.setAttribute(a.name, a.value);
    });
  }

  function morph(old, fresh) {
    if (old.nodeType !== 1) {
      if (old.nodeValue !== fresh.nodeValue) old.nodeValue = fresh.nodeValue;
      return;
    }
    if (old.tagName === "TIME" && old.getAttribute("data-ts") === fresh.getAttribute("data-ts") &&
        old.getAttribute("data-format") === fresh.getAttribute("data-format")) return;
    var sig = null;
    if (comparedWhole(fresh)) {
      sig = signature(fresh);
      if (signatureOf(old) === sig) return;
    }
    syncAttributes(old, fresh);
    morphChildren(old, fresh);
    if (sig !== null) old.__overcSig = sig;
  }

  function sameKind(a, b) {
    return a.nodeType === b.nodeType && a.nodeName === b.nodeName && keyOf(a) === keyOf(b);
  }

  function morphChildren(old, fresh) {
    var keyed = {};
    Array.prototype.forEach.call(old.childNodes, function (n) {
      var k = keyOf(n);
      if (k) keyed[k] = n;
    });
    var cursor = old.firstChild;
    Array.prototype.slice.call(fresh.childNodes).forEach(function (f) {
      var k = keyOf(f), match = null;
      if (k) {
        match = keyed[k] || null;
        if (match && match.nodeName !== f.nodeName) match = null;
        if (match) delete keyed[k];
      } else if (cursor && !keyOf(cursor) && sameKind(cursor, f)) {
        match = cursor;
      }
      if (match) {
        if (match !== cursor) old.insertBefore(match, cursor);  // moved: only when it must
        else cursor = cursor.nextSibling;
        morph(match, f);
      } else {
        old.insertBefore(f, cursor);  // new
      }
    });
    while (cursor) {  // what the fresh page no longer has
      var next = cursor.nextSibling;
      if (!keyOf(cursor) || keyed[keyOf(cursor)] === cursor) old.removeChild(cursor);
      cursor = next;
    }
    Object.keys(keyed).forEach(function (k) {
      if (keyed[k].parentNode === old) old.removeChild(keyed[k]);
    });
  }

  function focusKey() {
    var el = document.activeElement;
    if (!el || el === document.body) return null;
    if (el.id) return "#" + el.id;
    var href = el.getAttribute("href");
    if (href) return "a[href=\"" + href.replace(/"/g, "\\\"") + "\"]";
    return null;
  }

  function announce(region, before) {
    var news = document.getElementById("live-news");
    var text = region.getAttribute("data-announce");
    if (news && text && text !== before) news.textContent = "Updated: " + text;
  }

  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    var focused = focusKey();
    var x = window.scrollX, y = window.scrollY;
    doc.querySelectorAll("[data-live]").forEach(function (fresh) {
      var old = document.getElementById(fresh.id);
      if (!old) return;
      var sig = signature(fresh);
      if (signatureOf(old) === sig) return;  // this region did not change
      var before = old.getAttribute("data-announce");
      morph(old, fresh);
      old.__overcSig = sig;
      localTimes();
      announce(old, before);
    });
    // The focused element is never replaced unless it changed itself; if it was, focus its
    // successor with the same id or link target.
    if (focused && (!document.activeElement || document.activeElement === document.body)) {
      var again = document.querySelector(focused);
      if (again) again.focus({preventScroll: true});
    }
    if (window.scrollX !== x || window.scrollY !== y) window.scrollTo(x, y);
    applyFilter();
  }

  function setLive(ok) {
    var dot = document.getElementById("live-status");
    if (!dot) return;
    dot.classList.toggle("off", !ok);
    var word = document.getElementById("live-word");
    if (word) word.textContent = ok ? " live" : " offline";
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

  // -- tile tips: a tile's info excerpt, fetched per server card when a tile is hovered or
  // focused (the page does not carry 10,000 of them), shown in one tooltip the tile points to
  // with aria-describedby; Escape or leaving the tile hides it.
  var TIP_FRESH_MS = 10000;
  var tipCache = {};  // server id -> {at: ms, data: promise of {service id: excerpt}}
  var tipFor = null;

  function tipElement() {
    var tip = document.getElementById("tile-tip");
    if (!tip) {
      tip = document.createElement("div");
      tip.id = "tile-tip";
      tip.className = "tip hidden";
      tip.setAttribute("role", "tooltip");
      tip.addEventListener("mouseleave", function (e) {
        if (!tipFor || !tipFor.contains(e.relatedTarget)) hideTip();
      });
      (document.getElementById("main") || document.body).appendChild(tip);  // in a landmark
    }
    return tip;
  }

  function excerpts(serverId) {
    var now = Date.now(), entry = tipCache[serverId];
    if (!entry || now - entry.at > TIP_FRESH_MS) {
      entry = tipCache[serverId] = {at: now, data: fetch("/ui/server/" + serverId + "/tips", {
        credentials: "same-origin", cache: "no-store", redirect: "manual",
        headers: {"Accept": "application/json"}
      }).then(function (res) { return res.status === 200 ? res.json() : {}; })
        .catch(function () { return {}; })};
    }
    return entry.data;
  }

  function showTip(tile) {
    var card = tile.closest("article.server");
    if (!card) return;
    var serverId = (card.getAttribute("data-key") || "").replace("server-", "");
    var serviceId = (tile.getAttribute("href") || "").split("/").pop();
    tipFor = tile;
    excerpts(serverId).then(function (data) {
      if (tipFor !== tile) return;  // the pointer or the focus moved on meanwhile
      var tip = tipElement();
      var info = data[serviceId];
      tip.textContent = (tile.getAttribute("aria-label") || tileName(tile)) + ": " +
        (info ? info : "no output");
      tip.classList.remove("hidden");
      var box = tile.getBoundingClientRect();
      var left = Math.max(4, Math.min(box.left, document.documentElement.clientWidth -
                                      tip.offsetWidth - 4));
      tip.style.left = (left + window.scrollX) + "px";
      tip.style.top = (box.bottom + window.scrollY + 4) + "px";
      tile.setAttribute("aria-describedby", "tile-tip");
    });
  }

  function hideTip() {
    if (tipFor) tipFor.removeAttribute("aria-describedby");
    tipFor = null;
    var tip = document.getElementById("tile-tip");
    if (tip) tip.classList.add("hidden");
  }

  function tileOf(target) {
    return target && target.closest ? target.closest("#servers a.tile") : null;
  }

  function watchTips() {
    document.addEventListener("focusin", function (e) {
      var tile = tileOf(e.target);
      if (tile) showTip(tile); else if (tipFor) hideTip();
    });
    document.addEventListener("focusout", function (e) {
      if (tileOf(e.target) === tipFor && !tileOf(e.relatedTarget)) hideTip();
    });
    document.addEventListener("mouseover", function (e) {
      var tile = tileOf(e.target);
      if (tile && tile !== tipFor) showTip(tile);
    });
    document.addEventListener("mouseout", function (e) {
      var tile = tileOf(e.target);
      var into = e.relatedTarget;
      if (tile && tile === tipFor && !tile.contains(into) &&
          !(into && into.id === "tile-tip")) hideTip();
    });
    document.addEventListener("keydown", function (e) {
      if (e.key === "Escape" && tipFor) hideTip();
    });
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
    var meta = document.querySelector("meta[name=overc-etag]");
    if (meta) etag = meta.getAttribute("content");  // the first poll is a 304 already
    localTimes();
    fillTimezone();
    var box = document.getElementById("filter");
    if (box) box.addEventListener("input", applyFilter);
    applyFilter();
    if (document.getElementById("servers")) watchTips();
    if (document.querySelector("[data-live]")) {
      // Every poll is a 304 until something this page shows changes.
      setTimeout(poll, POLL_MS);
    }
    setInterval(localTimes, 1000);
  });
})();
