// Lists: a column header sorts the table alone (htmx swaps it and pushes the URL); the
// filter form above it is then brought in step with the URL, so that the next filter
// change keeps that order.
(function () {
  "use strict";
  document.body.addEventListener("htmx:pushedIntoHistory", function () {
    var form = document.querySelector("form.filters");
    if (!form || !form.elements.sort) { return; }
    var sort = new URLSearchParams(window.location.search).get("sort");
    if (sort !== null) { form.elements.sort.value = sort; }
  });
})();
