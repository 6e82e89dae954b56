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

  // A select the user has not touched follows the live value; a touched one keeps theirs.
  function follow(select, value) {
    if (!select || !value) { return; }
    var untouched = Array.prototype.every.call(select.options, function (option) {
      return option.selected === option.defaultSelected;
    });
    if (!untouched) { return; }
    Array.prototype.forEach.call(select.options, function (option) {
      option.defaultSelected = option.selected = option.value === value;
    });
  }

  // A row being edited keeps its editor and what was typed: the live update is not
  // swapped in, the row says instead that the connector changed meanwhile, and to what.
  document.body.addEventListener("htmx:oobBeforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.classList || !target.classList.contains("editing")) { return; }
    event.detail.shouldSwap = false;
    var badge = event.detail.fragment.querySelector(".badge");
    var code = event.detail.fragment.querySelector(".error-code");
    var status = badge ? badge.textContent.trim() : "";
    follow(target.querySelector("select[name=connector_status]"), status);
    follow(target.querySelector("select[name=connector_error_code]"),
      code ? code.textContent.trim() : "");
    var notice = target.querySelector(".changed-meanwhile");
    if (!notice) { return; }
    notice.textContent = "Changed meanwhile" + (status ? ": now " + status : "") +
      ". What you typed is kept; Save applies it, Cancel shows the connector as it is.";
    notice.hidden = false;
  });

  // A charge point's answer stays where it was asked until dismissed.
  document.body.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-dismiss]");
    if (!button) { return; }
    var output = button.closest("output");
    if (output) {
      output.textContent = "";
      output.className = "";
    }
  });
})();
