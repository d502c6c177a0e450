// graft dashboard: live updates. The server pushes a change counter over SSE (/events); on a
// change the page fetches itself again and patches the DOM in place (no reload, no layout jump).
(function () {
  'use strict';
  var live = document.getElementById('live');
  var refreshes = 0;
  function setLive(state, text) {
    if (!live) return;
    live.setAttribute('data-state', state);
    live.textContent = text;
  }

  // Make `from` equal to `to` (a node of another document), touching only what differs.
  function morph(from, to) {
    if (from.nodeType !== 1) {
      if (from.nodeValue !== to.nodeValue) from.nodeValue = to.nodeValue;
      return;
    }
    if (from.hasAttribute('data-static') && to.hasAttribute('data-static')) return;
    var i, a;
    for (i = from.attributes.length - 1; i >= 0; i--) {
      a = from.attributes[i];
      if (!to.hasAttribute(a.name)) from.removeAttribute(a.name);
    }
    for (i = 0; i < to.attributes.length; i++) {
      a = to.attributes[i];
      if (from.getAttribute(a.name) !== a.value) from.setAttribute(a.name, a.value);
    }
    var fc = Array.prototype.slice.call(from.childNodes);
    var tc = to.childNodes;
    for (i = 0; i < tc.length; i++) {
      var f = fc[i], t = tc[i];
      if (!f) {
        from.appendChild(document.importNode(t, true));
      } else if (f.nodeType !== t.nodeType || f.nodeName !== t.nodeName ||
                 (f.nodeType === 1 && (f.id || '') !== (t.id || ''))) {
        from.replaceChild(document.importNode(t, true), f);
      } else {
        morph(f, t);
      }
    }
    for (i = tc.length; i < fc.length; i++) from.removeChild(fc[i]);
  }

  // Ages and the running phase's duration tick on between updates: each element carries its
  // value in seconds as rendered, and the time since the page (or its last update) was rendered
  // is added, so the browser's clock never matters.
  var renderedAt = Date.now();
  function pad(n) { return (n < 10 ? '0' : '') + n; }
  function dur(s) {
    s = Math.max(0, s);
    if (s < 10) return s.toFixed(1) + 's';
    s = Math.round(s);
    if (s < 60) return s + 's';
    if (s < 3600) return Math.floor(s / 60) + 'm ' + pad(s % 60) + 's';
    if (s < 86400) return Math.floor(s / 3600) + 'h ' + pad(Math.floor((s % 3600) / 60)) + 'm';
    return Math.floor(s / 86400) + 'd ' + Math.floor((s % 86400) / 3600) + 'h';
  }
  function tick() {
    var dt = (Date.now() - renderedAt) / 1000;
    var i, el, v, text;
    var ages = document.querySelectorAll('[data-age]');
    for (i = 0; i < ages.length; i++) {
      el = ages[i]; v = parseFloat(el.getAttribute('data-age')) + Math.floor(dt);
      text = v < 1 ? 'just now' : dur(Math.floor(v)) + ' ago';
      if (el.textContent !== text) el.textContent = text;
    }
    var durs = document.querySelectorAll('[data-dur]');
    for (i = 0; i < durs.length; i++) {
      el = durs[i]; text = dur(parseFloat(el.getAttribute('data-dur')) + dt);
      if (el.textContent !== text) el.textContent = text;
    }
  }
  setInterval(tick, 1000);

  var timer = null, busy = false, again = false;
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.pathname, { credentials: 'same-origin', cache: 'no-store', headers: { Accept: 'text/html' } })
      .then(function (r) { if (!r.ok) throw new Error('HTTP ' + r.status); return r.text(); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, 'text/html');
        var next = doc.getElementById('main'), cur = document.getElementById('main');
        if (next && cur) morph(cur, next);
        renderedAt = Date.now();
        if (doc.title && doc.title !== document.title) document.title = doc.title;
        refreshes++;
        document.body.setAttribute('data-refreshes', String(refreshes));
      })
      .catch(function () { setLive('off', 'update failed'); })
      .then(function () {
        busy = false;
        if (again) { again = false; schedule(); }
      });
  }
  function schedule() {
    if (timer) return;
    timer = setTimeout(function () { timer = null; refresh(); }, 100);
  }

  if (window.EventSource) {
    var es = new EventSource('/events');
    var lost = false;
    // After a reconnect the page may have missed changes: fetch it once.
    es.addEventListener('hello', function () { setLive('on', 'live'); if (lost) schedule(); lost = false; });
    es.addEventListener('change', function () { setLive('on', 'live'); schedule(); });
    es.onerror = function () { lost = true; setLive('off', 'reconnecting'); };
  }
})();
