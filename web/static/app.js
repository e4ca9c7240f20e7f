// Keyboard shortcuts for the inbox (j/k move, Enter opens, c claims, ? help) and the
// CSRF header for fetch calls. Every page works without this file: forms POST.
(function () {
  "use strict";
  var token = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // Any fetch to our own origin carries the CSRF token as X-CSRFToken.
  window.ofFetch = function (url, options) {
    options = options || {};
    options.credentials = "same-origin";
    options.headers = Object.assign({"X-CSRFToken": token}, options.headers || {});
    return fetch(url, options);
  };

  function typing(el) {
    return el && (el.tagName === "INPUT" || el.tagName === "TEXTAREA" || el.tagName === "SELECT" || el.isContentEditable);
  }

  function rows() { return Array.prototype.slice.call(document.querySelectorAll("tr.task-row")); }
  var current = -1;

  function select(i) {
    var all = rows();
    if (!all.length) { return; }
    current = Math.max(0, Math.min(all.length - 1, i));
    all.forEach(function (r, n) { r.classList.toggle("selected", n === current); });
    all[current].scrollIntoView({block: "nearest"});
  }

  function toggleHelp() {
    var help = document.getElementById("help");
    if (help) { help.hidden = !help.hidden; }
  }

  function post(url) {
    var form = document.createElement("form");
    form.method = "post";
    form.action = url;
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = "csrf_token";
    input.value = token;
    form.appendChild(input);
    document.body.appendChild(form);
    form.submit();
  }

  document.addEventListener("keydown", function (ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || typing(ev.target)) { return; }
    var all = rows();
    if (ev.key === "?") { toggleHelp(); ev.preventDefault(); return; }
    if (ev.key === "Escape") { var h = document.getElementById("help"); if (h) { h.hidden = true; } return; }
    if (ev.key === "j") { select(current + 1); ev.preventDefault(); }
    else if (ev.key === "k") { select(current < 0 ? 0 : current - 1); ev.preventDefault(); }
    else if (ev.key === "Enter" && current >= 0 && all[current]) {
      window.location.href = all[current].getAttribute("data-href");
      ev.preventDefault();
    } else if (ev.key === "c") {
      if (current >= 0 && all[current] && all[current].getAttribute("data-claim")) {
        post(all[current].getAttribute("data-claim"));
      } else {
        var btn = document.querySelector('[data-key="c"]');
        if (btn) { btn.click(); }
      }
      ev.preventDefault();
    }
  });

  document.addEventListener("click", function (ev) {
    var t = ev.target;
    if (t && t.classList && t.classList.contains("help-close")) { toggleHelp(); }
  });

  // Live SLA countdowns: same thresholds as the server (green > 1 h, amber < 1 h, red < 0).
  function span(seconds) {
    var neg = seconds < 0, total = Math.floor(Math.abs(seconds) / 60);
    var d = Math.floor(total / 1440), h = Math.floor((total % 1440) / 60), m = total % 60;
    var text = d ? d + "d " + h + "h" : h + "h " + (m < 10 ? "0" : "") + m + "m";
    return (neg ? "-" : "") + text;
  }
  function tick() {
    document.querySelectorAll(".sla[data-due]").forEach(function (el) {
      var left = (Date.parse(el.getAttribute("data-due")) - Date.now()) / 1000;
      if (isNaN(left)) { return; }
      el.textContent = span(left);
      el.classList.remove("sla-ok", "sla-warn", "sla-breached");
      el.classList.add(left > 3600 ? "sla-ok" : left >= 0 ? "sla-warn" : "sla-breached");
    });
  }
  setInterval(tick, 30000);
})();
