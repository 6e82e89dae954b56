// The live channel: htmx's ws extension swaps the fragments the server sends. When the
// socket comes back after a drop, or the server says it had to drop events, every part of
// the page marked data-live-refresh is fetched again, so that nothing missed stays stale.
(function () {
  "use strict";
  var opened = false;

  function refresh() {
    document.querySelectorAll("[data-live-refresh]").forEach(function (element) {
      htmx.ajax("GET", window.location.pathname + window.location.search, {
        target: "#" + element.id, select: "#" + element.id, swap: "outerHTML"
      });
    });
  }

  document.body.addEventListener("htmx:wsOpen", function () {
    if (opened) { refresh(); }
    opened = true;
  });
  document.body.addEventListener("htmx:oobAfterSwap", function (event) {
    if (event.detail.target && event.detail.target.id === "live-resync") { refresh(); }
  });
})();
