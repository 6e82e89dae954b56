// The live channel: htmx's ws extension swaps the fragments the server sends. When the
// socket comes back after a drop, or the server says it had to drop events, every part of
// the page marked data-live-refresh is fetched again, so that nothing missed stays stale.
(function () {
  "use strict";
  var opened = false;
  var socket = null;
  var reported = null;

  // The connector rows the list shows, and its filters, told to the server whenever they
  // change (a page, a sort, a filter): the rows it does not show come as stubs (their
  // filter attributes only), which are all the notice below needs, and only when they
  // could change it (a status change that made a row match the filters, or stop).
  function report() {
    if (!socket || !document.getElementById("connector-table")) { return; }
    var ids = Array.prototype.map.call(
      document.querySelectorAll('tr[data-search][id^="connector-"]'),
      function (row) { return row.id; });
    var message = JSON.stringify({ shown: ids, filters: filtering() });
    if (message !== reported) {
      reported = message;
      socket.send(message);
    }
  }

  // Each part is cut from the whole page (HX-Boosted asks the server for the page, not
  // its main fragment), so that a page may mark several parts.
  function refresh() {
    document.querySelectorAll("[data-live-refresh]").forEach(function (element) {
      // Each from its own source: requests of one source queue, and htmx keeps only the
      // last one queued.
      htmx.ajax("GET", window.location.pathname + window.location.search, {
        source: element, target: "#" + element.id, select: "#" + element.id,
        swap: "outerHTML", headers: { "HX-Boosted": "true" }
      });
    });
  }

  // A row being edited survives the reload of its part: taken out as the new copy of the
  // part is swapped in, and put back in place of its own new copy. Taken at the swap, not
  // when the reload was asked for: an editor opened while the reload was on its way (a
  // resync the server sent, say) is kept too.
  var editing = {};
  document.body.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || !target.hasAttribute || !target.hasAttribute("data-live-refresh")) { return; }
    var rows = Array.prototype.slice.call(target.querySelectorAll("tr.editing"));
    if (rows.length) { editing[target.id] = rows; }
  });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    var rows = event.target && editing[event.target.id];
    if (!rows) { return; }
    delete editing[event.target.id];
    rows.forEach(function (row) {
      var fresh = document.getElementById(row.id);
      if (fresh && fresh !== row) { fresh.replaceWith(row); }
    });
  });

  // What the list filters on screen ask for, from the filter form ("" means any).
  var FILTERS = { status: "status", error_code: "errorCode", type: "type",
    enabled: "enabled", company: "company", connection: "connection" };

  // The filters set on the list's form (name: value), as `matches` reads them.
  function filtering() {
    var form = document.querySelector("form.filters");
    var set = {};
    if (!form) { return set; }
    var values = new FormData(form);
    Object.keys(FILTERS).concat(["q"]).forEach(function (name) {
      var wanted = (values.get(name) || "").trim();
      if (wanted) { set[name] = wanted; }
    });
    return set;
  }

  function matches(row) {
    var wanted = filtering();
    for (var name in FILTERS) {
      var attribute = row.dataset[FILTERS[name]];
      if (wanted[name] && attribute !== undefined && attribute !== wanted[name]) { return false; }
    }
    var text = (wanted.q || "").toLowerCase();
    return !text || (row.dataset.search || "").indexOf(text) >= 0;
  }

  // Whether a row not on screen that matches now did not before its status event (the
  // server sends what it was as data-was-*, empty for a connector the event created): a
  // row that matched already is on another page of the list, not new to it; without
  // data-was-* (a connection change, an edit), nothing the filters look at changed.
  function cameToMatch(row) {
    if (!row.hasAttribute("data-was-status")) { return false; }
    if (row.dataset.wasStatus === "") { return true; }
    var before = row.cloneNode(false);
    before.dataset.status = row.dataset.wasStatus;
    before.dataset.errorCode = row.dataset.wasErrorCode;
    return !matches(before);
  }

  // Changes the list on screen cannot show in place: rows that came to match its
  // filters (not on this page yet) and rows that stopped matching (marked, until shown).
  var arrived = {};
  var left = {};

  function notify() {
    var notice = document.querySelector(".live-notice");
    if (!notice) { return; }
    var parts = [];
    var news = Object.keys(arrived).length;
    var gone = Object.keys(left).length;
    if (news) { parts.push(news + " new matching"); }
    if (gone) { parts.push(gone + " no longer matching"); }
    notice.querySelector("span").textContent = parts.join(", ") + ".";
    notice.hidden = parts.length === 0;
  }

  function forget() { arrived = {}; left = {}; notify(); }

  // The live channel's messages, before htmx swaps them: a row on screen is updated in
  // place (and marked when it no longer matches the filters); a row not on screen (or its
  // stub) that now matches is counted in the notice; the rest (rows of other pages or
  // filters, or targets this page does not show) is dropped, so that no swap looks for
  // what is not there.
  htmx.defineExtension("live-filter", {
    transformResponse: function (text) {
      var template = document.createElement("template");
      template.innerHTML = text;
      var kept = [];
      var stale = false;
      Array.prototype.forEach.call(template.content.children, function (element) {
        var existing = element.id && document.getElementById(element.id);
        var isRow = element.tagName === "TR" && element.hasAttribute("data-search");
        if (!isRow) {
          if (existing) { kept.push(element.outerHTML); }
          return;
        }
        if (existing && element.hasAttribute("data-stub")) {
          // A stub (filter attributes only, for a row not shown) for a row on screen: the
          // server did not know yet that it is shown; the list is fetched again.
          stale = true;
          return;
        }
        if (matches(element)) {
          delete left[element.id];
          if (existing) {
            kept.push(element.outerHTML);
          } else if (cameToMatch(element)) {
            arrived[element.id] = true;
          }
        } else if (existing) {
          left[element.id] = true;
          element.classList.add("no-longer-matching");
          element.setAttribute("title", "No longer matches the filters: leaves when the list is shown again");
          kept.push(element.outerHTML);
        } else {
          delete arrived[element.id];
        }
      });
      notify();
      if (stale) {
        reported = null;
        report();
        refresh();
      }
      return kept.join("");
    }
  });

  document.body.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest("[data-live-show]")) {
      forget();
      refresh();
    }
  });
  document.body.addEventListener("htmx:afterSwap", function (event) {
    if (event.detail.target && event.detail.target.hasAttribute("data-live-refresh")) { forget(); }
  });

  document.body.addEventListener("htmx:afterSettle", report);
  // The filters count from the moment they change (`matches` reads the form), before the
  // list they ask for has come.
  ["input", "change"].forEach(function (type) {
    document.body.addEventListener(type, function (event) {
      if (event.target.closest && event.target.closest("form.filters")) { report(); }
    });
  });
  document.body.addEventListener("htmx:wsOpen", function (event) {
    socket = event.detail.socketWrapper;
    reported = null;
    report();
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
