/* Sortable, filterable and paged tables: click a heading of a table.sortable to sort by that column (numbers by
   their data-sort key, text otherwise; empty keys last); type in a .table-filter box to keep matching rows; a table
   with data-page-size shows that many of the rows left at a time, with its .pager to move between pages. Without
   scripts every row shows. */
(function () {
  function key(cell) {
    if (!cell) { return ""; }
    return cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim().toLowerCase();
  }
  function compare(a, b) {
    if (a === b) { return 0; }
    if (a === "") { return 1; }
    if (b === "") { return -1; }
    var x = parseFloat(a), y = parseFloat(b);
    if (!isNaN(x) && !isNaN(y) && String(x) !== "NaN") { return x - y; }
    return a < b ? -1 : 1;
  }
  function rowsOf(table) { return Array.prototype.slice.call(table.tBodies[0].rows); }

  // Paging: which rows the filter left (data-filtered-out marks the others), and which page of them shows.
  var pagers = {};
  function pager(table) {
    var size = parseInt(table.getAttribute("data-page-size"), 10);
    var nav = document.querySelector(".pager[data-table='" + table.id + "']");
    if (!size || !nav) { return null; }
    var state = { page: 0 };
    var status = nav.querySelector(".pager-status");
    var buttons = {};
    nav.querySelectorAll("button[data-step]").forEach(function (button) {
      buttons[button.getAttribute("data-step")] = button;
    });
    function show() {
      var left = rowsOf(table).filter(function (row) { return !row.hasAttribute("data-filtered-out"); });
      var total = table.tBodies[0].rows.length;
      var pages = Math.max(1, Math.ceil(left.length / size));
      state.page = Math.max(0, Math.min(state.page, pages - 1));
      var first = state.page * size;
      rowsOf(table).forEach(function (row) { row.hidden = true; });
      left.slice(first, first + size).forEach(function (row) { row.hidden = false; });
      var shown = left.length ? (first + 1) + "\u2013" + Math.min(first + size, left.length) : "0";
      status.textContent = "rows " + shown + " of " + left.length.toLocaleString("en") +
        (left.length !== total ? " matching (" + total.toLocaleString("en") + " in all)" : "") +
        "; page " + (state.page + 1) + " of " + pages;
      buttons.first.disabled = buttons.previous.disabled = state.page === 0;
      buttons.next.disabled = buttons.last.disabled = state.page >= pages - 1;
    }
    var steps = { first: function () { return 0; }, previous: function () { return state.page - 1; },
                  next: function () { return state.page + 1; }, last: function () { return Infinity; } };
    Object.keys(buttons).forEach(function (step) {
      buttons[step].addEventListener("click", function () { state.page = steps[step](); show(); });
    });
    nav.hidden = table.tBodies[0].rows.length <= size;  // one page: nothing to move between
    show();
    return { reset: function () { state.page = 0; show(); } };
  }
  document.querySelectorAll("table[data-page-size]").forEach(function (table) {
    var paged = pager(table);
    if (paged) { pagers[table.id] = paged; }
  });

  document.querySelectorAll("table.sortable").forEach(function (table) {
    var headers = table.querySelectorAll("thead th");
    headers.forEach(function (th, column) {
      th.tabIndex = 0;
      function sort() {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        headers.forEach(function (other) { other.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        // Keys are read once, not at every comparison: a fleet table can hold 10,000 rows.
        var keyed = rowsOf(table).map(function (row) { return { row: row, key: key(row.cells[column]) }; });
        keyed.sort(function (r1, r2) {
          if (r1.key === "" || r2.key === "") { return compare(r1.key, r2.key); }
          return ascending ? compare(r1.key, r2.key) : compare(r2.key, r1.key);
        });
        var ordered = document.createDocumentFragment();
        keyed.forEach(function (item) { ordered.appendChild(item.row); });
        body.appendChild(ordered);
        if (pagers[table.id]) { pagers[table.id].reset(); }
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (event) { if (event.key === "Enter") { sort(); } });
    });
  });
  document.querySelectorAll("input.table-filter").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-table"));
    if (!table) { return; }
    var texts = null;  // each row's text, read at the first keystroke
    input.addEventListener("input", function () {
      var words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
      var rows = rowsOf(table);
      if (!texts) {
        texts = new Map(rows.map(function (row) {
          return [row, ((row.getAttribute("data-filter") || "") + " " + row.textContent).toLowerCase()];
        }));
      }
      rows.forEach(function (row) {
        var text = texts.get(row);
        var match = words.every(function (word) { return text.indexOf(word) !== -1; });
        if (match) { row.removeAttribute("data-filtered-out"); } else { row.setAttribute("data-filtered-out", ""); }
        row.hidden = !match;
      });
      if (pagers[table.id]) { pagers[table.id].reset(); }
    });
  });
})();
