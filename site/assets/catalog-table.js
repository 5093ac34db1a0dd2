/* receipts: the catalog table (catalog and tag pages): sort by any column, switch the pack its score and
 * retention columns show.
 *
 * The server renders every row for the listing's default pack, so the table reads with JavaScript off.
 * Each row carries every pack's signed student score and retention in data-rc-packs (JSON the generator
 * wrote from the verified receipt); the pack selector rewrites those two cells from it with textContent
 * (a pack id or metric name from a receipt never becomes HTML) and re-sorts if the table is sorted by one.
 * Sorting: a cell's data-sort (a raw number, or empty for n/a) is the key when present, otherwise its text;
 * numbers sort as numbers; empty keys go last in both directions.
 */
(function () {
  "use strict";
  if (window.receiptsCatalogTable) return;

  function each(list, fn) { Array.prototype.forEach.call(list, fn); }

  function sortKey(td) {
    if (!td) return "";
    var raw = td.hasAttribute("data-sort") ? td.getAttribute("data-sort") : td.textContent.trim();
    var n = raw === "" ? NaN : Number(raw);
    return isFinite(n) ? n : raw.toLowerCase();
  }

  function sortRows(table, column, ascending) {
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (tr, i) {
      return { tr: tr, key: sortKey(tr.cells[column]), i: i };
    });
    rows.sort(function (a, b) {
      if (a.key === "" && b.key !== "") return 1;
      if (b.key === "" && a.key !== "") return -1;
      var c = typeof a.key === "number" && typeof b.key === "number" ? a.key - b.key
        : String(a.key) < String(b.key) ? -1 : String(a.key) > String(b.key) ? 1 : 0;
      return (ascending ? c : -c) || a.i - b.i;
    });
    var fragment = document.createDocumentFragment();
    rows.forEach(function (r) { fragment.appendChild(r.tr); });
    body.appendChild(fragment);
  }

  /* The column the table is sorted by now and its direction, or null. */
  function sortedBy(table) {
    var found = null;
    each(table.querySelectorAll("thead th"), function (th, column) {
      var state = th.getAttribute("aria-sort");
      if (state === "ascending" || state === "descending") found = { column: column, ascending: state === "ascending" };
    });
    return found;
  }

  function sortable(table) {
    var heads = table.querySelectorAll("thead th");
    each(heads, function (th, column) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "rc-sort";
      while (th.firstChild) button.appendChild(th.firstChild);
      th.appendChild(button);
      th.setAttribute("aria-sort", "none");
      button.addEventListener("click", function () {
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        each(heads, function (h) { h.setAttribute("aria-sort", "none"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        sortRows(table, column, ascending);
      });
    });
  }

  function finite(v) { return typeof v === "number" && isFinite(v) ? v : null; }

  /* One pack cell: the number (3 decimals, as the server writes it), the metric beside a score. */
  function fill(td, numbers, key) {
    td.textContent = "";
    if (!numbers) { td.textContent = "n/a (not run)"; td.setAttribute("data-sort", ""); return; }
    var v = finite(numbers[key]);
    td.textContent = v === null ? "n/a" : v.toFixed(3);
    td.setAttribute("data-sort", v === null ? "" : String(v));
    if (key === "score" && numbers.metric) {
      var unit = document.createElement("span");
      unit.className = "rc-unit";
      unit.textContent = String(numbers.metric);
      td.appendChild(document.createTextNode(" "));
      td.appendChild(unit);
    }
  }

  function packs(tr) {
    try {
      var parsed = JSON.parse(tr.getAttribute("data-rc-packs") || "{}");
      return parsed && typeof parsed === "object" ? parsed : {};
    } catch (e) { return {}; }
  }

  /* Show ``pack``'s numbers in every row; keep the current sort order meaningful. */
  function showPack(wrap, pack) {
    var table = wrap.querySelector("table.rc-catalog");
    each(wrap.querySelectorAll(".rc-pack-name"), function (el) { el.textContent = pack; });
    each(table.tBodies[0].rows, function (tr) {
      var all = packs(tr);
      var numbers = Object.prototype.hasOwnProperty.call(all, pack) ? all[pack] : null;
      each(tr.querySelectorAll("td[data-rc-col]"), function (td) { fill(td, numbers, td.getAttribute("data-rc-col")); });
    });
    var sorted = sortedBy(table);
    if (sorted) sortRows(table, sorted.column, sorted.ascending);
    wrap.setAttribute("data-rc-pack", pack);
  }

  function setUp(wrap) {
    var table = wrap.querySelector("table.rc-sortable");
    if (!table || table.getAttribute("data-rc-sortable") === "ready") return;
    sortable(table);
    var select = wrap.querySelector("select.rc-pack-select");
    if (select) {
      var choose = wrap.querySelector(".rc-pack-choose");
      if (choose) choose.hidden = false;
      select.addEventListener("change", function () { showPack(wrap, select.value); });
      if (select.value && select.value !== (wrap.querySelector(".rc-pack-name") || {}).textContent) {
        showPack(wrap, select.value);  /* the browser restored another choice (back/forward) */
      }
    }
    table.setAttribute("data-rc-sortable", "ready");
  }

  function run() {
    each(document.querySelectorAll("table.rc-sortable"), function (table) {
      setUp(table.closest(".rc-catalog-wrap") || table.parentNode);
    });
  }

  window.receiptsCatalogTable = { run: run, sortRows: sortRows, showPack: showPack };
  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(function () { run(); });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
})();
