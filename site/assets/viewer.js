/* receipts: the per-example viewer (generator/viewer.py writes the page and its rows-<k>.json).
 *
 * The page holds the first rows as HTML (it works with JavaScript off). This script loads the other pages of
 * rows when they are needed, filters them (slice, variant, "student wrong, teacher right", disagreement,
 * chosen items) and pages through the result. A URL selects rows: ?items=cap-028,cap-030, ?slice=domain=units,
 * ?variant=typo, ?filter=swtr or ?filter=disagreement (the card page links failure modes and slices so).
 * Every text from a row is inserted with textContent into elements this script creates: nothing from a pack
 * or a model becomes HTML, an attribute that runs, or a link.
 */
(function () {
  "use strict";
  if (window.receiptsViewer) return;

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function num(v, digits) {
    if (typeof v !== "number" || !isFinite(v)) return "n/a";
    return v.toFixed(digits === undefined ? 3 : digits);
  }

  function cell(className, label) {
    var td = el("td", className);
    td.setAttribute("data-label", label);
    return td;
  }

  function roleCell(c, role) {
    var td = cell("rc-x-role", role);
    if (!c) { td.appendChild(el("em", null, "not run")); return td; }
    td.appendChild(c.output === "" ? el("em", null, "empty output") : el("bdi", "rc-text", c.output));
    if (c.error) { td.appendChild(el("br")); td.appendChild(el("span", "rc-x-error", "error: " + c.error)); }
    td.appendChild(el("br"));
    var verdict = c.right === true ? "right" : c.right === false ? "wrong" : "not scored";
    var kind = c.right === true ? "right" : c.right === false ? "wrong" : "unscored";
    td.appendChild(el("span", "rc-x-score rc-x-" + kind, verdict + ", score " + num(c.score)));
    var extra = " · confidence " + num(c.confidence);
    if (typeof c.kl === "number") extra += " · KL " + num(c.kl) + " " + String(c.kl_kind || "");
    if (c.abstained) extra += " · abstained";
    var desc = el("span", "rc-desc", extra);
    if (typeof c.chat_prompt_sha256 === "string") {  // chat templates (issue #20)
      desc.appendChild(document.createTextNode(" · chat template, prompt sha256 "));
      desc.appendChild(el("code", null, c.chat_prompt_sha256));
    }
    td.appendChild(desc);
    return td;
  }

  function rowElement(row, roles) {
    var tr = el("tr");
    tr.setAttribute("data-item", String(row.item));
    tr.setAttribute("data-variant", String(row.variant));
    var item = cell("rc-x-item", "item / variant");
    item.appendChild(el("bdi", "rc-text", row.item));
    item.appendChild(el("br"));
    item.appendChild(el("span", "rc-desc", row.variant));
    tr.appendChild(item);
    var input = cell("rc-x-input", "input");
    if (row.input === null || row.input === undefined) {
      input.appendChild(el("em", null, "input not published"));
      input.appendChild(el("br"));
      var hash = el("span", "rc-desc", "prompt sha256 ");
      hash.appendChild(el("code", null, row.prompt_sha256));
      input.appendChild(hash);
    } else {
      row.input.forEach(function (pair) {
        input.appendChild(el("span", "rc-x-field", pair[0]));
        input.appendChild(document.createTextNode(" "));
        input.appendChild(el("bdi", "rc-text", pair[1]));
        input.appendChild(el("br"));
      });
    }
    tr.appendChild(input);
    var gold = cell("rc-x-gold", "gold");
    gold.appendChild(el("bdi", "rc-text", row.gold));
    tr.appendChild(gold);
    roles.forEach(function (role) {
      var found = (row.roles || []).filter(function (c) { return c.role === role; })[0];
      tr.appendChild(roleCell(found, role));
    });
    var agree = cell("rc-x-agree", "student vs teacher");
    if (row.agreement === null || row.agreement === undefined) agree.appendChild(document.createTextNode("n/a"));
    else if (row.agreement) agree.appendChild(document.createTextNode("agrees"));
    else agree.appendChild(el("strong", null, "disagrees"));
    if (row.student_wrong_teacher_right) {
      agree.appendChild(el("br"));
      agree.appendChild(el("strong", null, "student wrong, teacher right"));
    }
    tr.appendChild(agree);
    return tr;
  }

  function wanted(form) {
    var items = form.elements.items.value.split(",").map(function (s) { return s.trim(); })
      .filter(function (s) { return s; });
    return {
      slice: form.elements.slice.value,
      variant: form.elements.variant.value,
      swtr: form.elements.swtr.checked,
      disagreement: form.elements.disagreement.checked,
      items: items
    };
  }

  function matches(row, w) {
    if (w.slice && (row.slices || []).indexOf(w.slice) < 0) return false;
    if (w.variant && row.variant !== w.variant) return false;
    if (w.swtr && !row.student_wrong_teacher_right) return false;
    if (w.disagreement && !row.disagreement) return false;
    if (w.items.length && w.items.indexOf(String(row.item)) < 0) return false;
    return true;
  }

  function selectValue(select, value) {
    var found = Array.prototype.some.call(select.options, function (o) { return o.value === value; });
    select.value = found ? value : "";
  }

  function fromUrl(form) {
    var params = new URLSearchParams(window.location.search);
    selectValue(form.elements.slice, params.get("slice") || "");
    selectValue(form.elements.variant, params.get("variant") || "");
    var filters = (params.get("filter") || "").split(",");
    form.elements.swtr.checked = filters.indexOf("swtr") >= 0;
    form.elements.disagreement.checked = filters.indexOf("disagreement") >= 0;
    form.elements.items.value = params.get("items") || "";
    return params.has("slice") || params.has("variant") || params.has("filter") || params.has("items");
  }

  function toUrl(w) {
    var params = new URLSearchParams();
    if (w.items.length) params.set("items", w.items.join(","));
    if (w.slice) params.set("slice", w.slice);
    if (w.variant) params.set("variant", w.variant);
    var filters = [];
    if (w.swtr) filters.push("swtr");
    if (w.disagreement) filters.push("disagreement");
    if (filters.length) params.set("filter", filters.join(","));
    var query = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (query ? "?" + query : ""));
  }

  function setup(root) {
    if (root.getAttribute("data-rc-viewer-ready") === "yes") return;
    root.setAttribute("data-rc-viewer-ready", "yes");
    var form = root.querySelector("form.rc-viewer-filters");
    var body = root.querySelector("table.rc-examples tbody");
    var summary = root.querySelector(".rc-viewer-summary");
    var pager = root.querySelector(".rc-viewer-pager");
    var roles = (root.getAttribute("data-roles") || "").split(" ").filter(function (r) { return r; });
    var pages = parseInt(root.getAttribute("data-pages"), 10) || 1;
    var perPage = parseInt(root.getAttribute("data-page-rows"), 10) || 50;
    var state = { rows: null, shown: [], page: 1 };
    form.hidden = false;

    function load() {
      if (state.rows) return Promise.resolve(state.rows);
      var fetches = [];
      for (var k = 1; k <= pages; k++) {
        fetches.push(fetch("rows-" + k + ".json", { cache: "no-store" }).then(function (r) {
          if (!r.ok) throw new Error("HTTP " + r.status);
          return r.json();
        }));
      }
      return Promise.all(fetches).then(function (docs) {
        state.rows = [];
        docs.forEach(function (doc) { state.rows = state.rows.concat(doc.rows || []); });
        return state.rows;
      });
    }

    function draw() {
      var total = state.shown.length;
      var last = Math.max(1, Math.ceil(total / perPage));
      state.page = Math.min(Math.max(1, state.page), last);
      var start = (state.page - 1) * perPage;
      var chunk = state.shown.slice(start, start + perPage);
      while (body.firstChild) body.removeChild(body.firstChild);
      chunk.forEach(function (row) { body.appendChild(rowElement(row, roles)); });
      summary.textContent = total
        ? "Rows " + (start + 1) + "–" + (start + chunk.length) + " of " + total + " matching (" +
          state.rows.length + " in all)."
        : "No row matches (" + state.rows.length + " in all).";
      while (pager.firstChild) pager.removeChild(pager.firstChild);
      if (last > 1) {
        var prev = el("button", "rc-x-prev", "← previous");
        prev.type = "button";
        prev.disabled = state.page === 1;
        prev.addEventListener("click", function () { state.page -= 1; draw(); });
        var next = el("button", "rc-x-next", "next →");
        next.type = "button";
        next.disabled = state.page === last;
        next.addEventListener("click", function () { state.page += 1; draw(); });
        pager.appendChild(prev);
        pager.appendChild(el("span", "rc-x-where", " page " + state.page + " of " + last + " "));
        pager.appendChild(next);
      }
    }

    function apply(keepUrl) {
      var w = wanted(form);
      if (!keepUrl) toUrl(w);
      return load().then(function (rows) {
        state.shown = rows.filter(function (row) { return matches(row, w); });
        state.page = 1;
        draw();
        root.setAttribute("data-rc-viewer-state", "filtered");
      }).catch(function (err) {
        summary.textContent = "Could not load the rows (" + String(err && err.message) + "); the first page is shown.";
      });
    }

    form.addEventListener("change", function () { apply(false); });
    form.addEventListener("submit", function (event) { event.preventDefault(); apply(false); });
    form.addEventListener("reset", function () { window.setTimeout(function () { apply(false); }, 0); });
    var selected = fromUrl(form);
    if (selected || pages > 1) apply(true);
    else root.setAttribute("data-rc-viewer-state", "filtered");
  }

  function run() {
    Array.prototype.forEach.call(document.querySelectorAll("[data-rc-viewer]"), setup);
  }

  window.receiptsViewer = { run: run };
  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(function () { run(); });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
})();
