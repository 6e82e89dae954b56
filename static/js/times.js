// Times: the server writes every moment as <time datetime="ISO">… UTC</time>. Here they
// are shown in the browser's own time zone, with how long ago where that is recent, and
// the exact UTC time on hover. Content htmx brings in (pages, live rows) is done too.
(function () {
  "use strict";
  var format = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "2-digit", day: "2-digit",
    hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
  });

  function ago(seconds) {
    if (seconds < 0) { return ""; }
    if (seconds < 60) { return Math.round(seconds) + " s ago"; }
    if (seconds < 3600) { return Math.round(seconds / 60) + " min ago"; }
    if (seconds < 86400) { return Math.round(seconds / 3600) + " h ago"; }
    return "";
  }

  function show(element) {
    var moment = new Date(element.getAttribute("datetime"));
    if (isNaN(moment.getTime())) { return; }
    if (!element.dataset.utc) {
      element.dataset.utc = element.textContent.trim();
      element.title = element.dataset.utc;
    }
    var recent = ago((Date.now() - moment.getTime()) / 1000);
    element.textContent = format.format(moment) + (recent ? " · " + recent : "");
  }

  function showAll(root) {
    (root.querySelectorAll ? root : document).querySelectorAll("time[datetime]").forEach(show);
  }

  document.addEventListener("DOMContentLoaded", function () { showAll(document); });
  document.body.addEventListener("htmx:load", function (event) { showAll(event.detail.elt); });
  document.body.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.detail.target) { showAll(event.detail.target); }
  });
  window.setInterval(function () { showAll(document); }, 10000);
})();
