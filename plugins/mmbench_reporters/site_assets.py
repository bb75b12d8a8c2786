"""The CSS and JavaScript every site page inlines (no CDN, no network: a page is one file).

The script only enhances tables that are already in the HTML (sorting, filtering, metric
toggles, dataset tabs): with JavaScript off the page shows every table in full. It reads
labels with ``textContent`` and writes them the same way, never as HTML, so a hostile
label stays text.
"""

CSS = """
:root { --fg: #1b1f24; --muted: #57606a; --line: #d0d7de; --head: #f6f8fa; --best: #dafbe1;
        --accent: #0969da; }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
       margin: 0 auto; padding: 1rem 1.5rem 3rem; max-width: 1400px; }
h1 { font-size: 1.6rem; margin: .4rem 0; }
h2 { font-size: 1.2rem; margin: 1.6rem 0 .5rem; }
nav a, a { color: var(--accent); }
code { background: var(--head); padding: 0 .25em; border-radius: 3px; }
.muted, .legend { color: var(--muted); }
.legend { font-size: 12.5px; max-width: 70rem; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin: .3rem 0; }
th, td { border: 1px solid var(--line); padding: .25rem .5rem; text-align: right; vertical-align: top;
         white-space: nowrap; }
th { background: var(--head); position: sticky; top: 0; }
td.label, th.label { text-align: left; white-space: normal; min-width: 6rem; }
td.best { background: var(--best); font-weight: 600; }
td.paper { color: var(--muted); font-style: italic; }
.ci { color: var(--muted); font-size: 12px; }
.same { color: #9a6700; font-weight: 700; cursor: help; }
.js th.sortable { cursor: pointer; user-select: none; }
.js th.sortable:hover { background: #eaeef2; }
th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 10px; }
th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 10px; }
#controls { display: flex; flex-wrap: wrap; gap: .6rem 1.2rem; align-items: center; margin: .8rem 0;
            padding: .6rem .8rem; background: var(--head); border: 1px solid var(--line); border-radius: 6px; }
#controls input[type=search] { font: inherit; padding: .25rem .5rem; min-width: 22rem; }
#controls fieldset { border: 0; margin: 0; padding: 0; display: flex; flex-wrap: wrap; gap: .1rem .8rem; }
#controls legend { float: left; margin-right: .5rem; color: var(--muted); }
#tabs { display: flex; flex-wrap: wrap; gap: .25rem; border-bottom: 1px solid var(--line); margin-top: 1rem; }
#tabs button { font: inherit; border: 1px solid var(--line); border-bottom: 0; background: var(--head);
               padding: .3rem .8rem; border-radius: 6px 6px 0 0; cursor: pointer; }
#tabs button[aria-selected=true] { background: #fff; font-weight: 600; position: relative; top: 1px; }
.count { color: var(--muted); font-size: 12.5px; }
figure { display: inline-block; margin: .5rem 1rem .5rem 0; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid var(--line); }
figcaption { color: var(--muted); font-size: 12.5px; }
""".strip()

JS = r"""
(function () {
  "use strict";
  document.documentElement.classList.add("js");
  var boards = Array.prototype.slice.call(document.querySelectorAll("section.board"));
  var tables = Array.prototype.slice.call(document.querySelectorAll("table.board-table"));

  function cellValue(row, index, numeric) {
    var cell = row.cells[index];
    var raw = cell ? cell.getAttribute("data-sort") : null;
    if (raw === null) raw = cell ? cell.textContent : "";
    if (!numeric) return raw.toLowerCase();
    return raw === "" ? null : parseFloat(raw);
  }

  function sortBy(table, th) {
    var index = th.cellIndex, numeric = th.getAttribute("data-type") === "num";
    var direction = th.getAttribute("aria-sort") === "ascending" ? "descending" : "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (c) {
      if (c.classList.contains("sortable")) c.setAttribute("aria-sort", "none");
    });
    th.setAttribute("aria-sort", direction);
    var sign = direction === "ascending" ? 1 : -1;
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, i) { return [row, i]; });
    rows.sort(function (a, b) {
      var x = cellValue(a[0], index, numeric), y = cellValue(b[0], index, numeric);
      if (x === null || y === null) {  // missing values last whatever the direction
        if (x === y) return a[1] - b[1];
        return x === null ? 1 : -1;
      }
      if (x < y) return -sign;
      if (x > y) return sign;
      return a[1] - b[1];
    });
    rows.forEach(function (pair) { body.appendChild(pair[0]); });
  }

  tables.forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th) {
      if (!th.classList.contains("sortable")) return;
      th.setAttribute("tabindex", "0");
      th.setAttribute("aria-sort", "none");
      th.title = "sort by this column (click again to reverse)";
      th.addEventListener("click", function () { sortBy(table, th); });
      th.addEventListener("keydown", function (event) {
        if (event.key === "Enter" || event.key === " ") { event.preventDefault(); sortBy(table, th); }
      });
    });
  });

  var filter = document.getElementById("filter");
  function applyFilter() {
    var words = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    tables.forEach(function (table) {
      var shown = 0, rows = table.tBodies[0].rows;
      Array.prototype.forEach.call(rows, function (row) {
        var text = (row.getAttribute("data-config") || "").toLowerCase();
        var keep = words.every(function (w) { return text.indexOf(w) >= 0; });
        row.hidden = !keep;
        if (keep) shown += 1;
      });
      var count = document.getElementById(table.id + "-count");
      if (count) count.textContent = shown + " of " + rows.length + " rows";
    });
  }
  filter.addEventListener("input", applyFilter);

  var metrics = [], toggles = document.getElementById("metrics");
  Array.prototype.forEach.call(document.querySelectorAll("th[data-metric]"), function (th) {
    var m = th.getAttribute("data-metric");
    if (metrics.indexOf(m) < 0) metrics.push(m);
  });
  metrics.forEach(function (m) {
    var label = document.createElement("label"), box = document.createElement("input");
    box.type = "checkbox"; box.checked = true; box.value = m;
    box.addEventListener("change", function () {
      Array.prototype.forEach.call(document.querySelectorAll("[data-metric]"), function (cell) {
        if (cell.getAttribute("data-metric") === m) cell.hidden = !box.checked;
      });
    });
    label.appendChild(box);
    label.appendChild(document.createTextNode(" " + m));
    toggles.appendChild(label);
  });

  var tabs = document.getElementById("tabs");
  function select(id) {
    boards.forEach(function (section) { section.hidden = section.id !== id; });
    Array.prototype.forEach.call(tabs.children, function (b) {
      b.setAttribute("aria-selected", String(b.getAttribute("data-target") === id));
    });
  }
  if (boards.length > 1) {
    boards.forEach(function (section) {
      var button = document.createElement("button");
      button.type = "button";
      button.setAttribute("role", "tab");
      button.setAttribute("data-target", section.id);
      button.textContent = section.getAttribute("data-tab");
      button.addEventListener("click", function () {
        select(section.id);
        history.replaceState(null, "", "#" + section.id);
      });
      tabs.appendChild(button);
    });
    var wanted = location.hash.slice(1);
    select(boards.some(function (s) { return s.id === wanted; }) ? wanted : boards[0].id);
    tabs.hidden = false;
  }
  document.getElementById("controls").hidden = false;
  applyFilter();
})();
""".strip()
