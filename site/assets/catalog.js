/* receipts: the buyer query and side-by-side compare over the static catalog index (catalog/index.json).
 *
 * Buyer query: RAM budget x task (an eval pack) x licence permission x priority, ranked. Memory comes from
 * the signed footprints (measured peak RSS of the best-fitting quantization) and, only where a model has
 * none, from the card's hardware profiles (claimed, and labelled so). Every row links to the model's page,
 * where the receipt is verified again in the browser; the badge says it verified when the catalog was built.
 * All text from the index is inserted with textContent: nothing from a card becomes HTML or a link target
 * except the generated page path.
 */
(function () {
  "use strict";
  if (window.receiptsCatalog) return;

  var PRIORITIES = {
    precision: { label: "precision", value: function (m, pack) { return extraction(m, pack, "precision"); },
      tie: function (m, pack) { return extraction(m, pack, "recall"); } },
    recall: { label: "recall", value: function (m, pack) { return extraction(m, pack, "recall"); },
      tie: function (m, pack) { return extraction(m, pack, "precision"); } },
    quality: { label: "student score", value: function (m, pack) { return score(m, pack); },
      tie: function (m, pack) { return retention(m, pack); } },
    retention: { label: "retention", value: function (m, pack) { return retention(m, pack); },
      tie: function (m, pack) { return score(m, pack); } },
    speed: { label: "decode tok/s", value: function (m, pack, fit) { return fit.decode_tps; },
      tie: function (m, pack) { return score(m, pack); } }
  };

  function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }
  function evalOf(m, pack) { return (m.evals || {})[pack] || null; }
  function extraction(m, pack, key) { var e = evalOf(m, pack); return e && e.extraction ? num(e.extraction[key]) : null; }
  function score(m, pack) { var e = evalOf(m, pack); return e ? num((e.scores || {}).student) : null; }
  function retention(m, pack) { var e = evalOf(m, pack); return e ? num(e.retention) : null; }

  /* The smallest memory this model is known to need: measured (footprints) first, else claimed (card). */
  function memory(m, budgetBytes) {
    var measured = (m.cost || []).filter(function (p) { return p.status === "ok" && num(p.peak_rss_bytes) !== null; });
    if (measured.length) {
      measured.sort(function (a, b) { return a.peak_rss_bytes - b.peak_rss_bytes; });
      var fitting = measured.filter(function (p) { return p.peak_rss_bytes <= budgetBytes; });
      var best = fitting.length ? fitting.reduce(function (a, b) {
        return (num(b.decode_tps_p50) || 0) > (num(a.decode_tps_p50) || 0) ? b : a; }) : measured[0];
      return { fits: best.peak_rss_bytes <= budgetBytes, basis: "measured", bytes: best.peak_rss_bytes,
        quant: best.quant, hardware: best.hardware || best.hw_class, decode_tps: num(best.decode_tps_p50) };
    }
    var claimed = (m.hardware_profiles || []).filter(function (h) { return num(h.ram_gib) !== null; });
    if (claimed.length) {
      claimed.sort(function (a, b) { return a.ram_gib - b.ram_gib; });
      var bytes = claimed[0].ram_gib * Math.pow(2, 30);
      return { fits: bytes <= budgetBytes, basis: "claimed by the card", bytes: bytes,
        quant: claimed[0].quantization, hardware: claimed[0].name, decode_tps: null };
    }
    return { fits: false, basis: "unknown", bytes: null, quant: null, hardware: null, decode_tps: null };
  }

  /* Licence filters read the terms receipts computed and signed (licence_terms), never the card's own claim;
     unknown is not permitted, and a permission the publisher claims only by override is shown as such. */
  function licenceWhy(m, key, words, why) {
    var verdict = (m.licence_terms || {})[key] || "unknown";
    if (verdict === "yes") return;
    var note = "computed " + words + ": " + verdict;
    if ((m.licence_overrides || []).indexOf(key) >= 0) note += " (the publisher claims it by override; read its reason on the card)";
    why.push(note);
  }

  /* query: {ram_gb, task, commercial, redistribution, priority}; returns {rows, excluded} */
  function query(index, q) {
    var budget = q.ram_gb * 1e9;
    var priority = PRIORITIES[q.priority] || PRIORITIES.quality;
    var rows = [], excluded = [];
    (index.models || []).forEach(function (m) {
      var why = [];
      var fit = memory(m, budget);
      if (!fit.fits) why.push(fit.basis === "unknown" ? "no memory figure" : "needs more than " + q.ram_gb + " GB");
      if (q.task && !evalOf(m, q.task)) why.push("no receipt for task " + q.task);
      if (q.commercial) licenceWhy(m, "commercial_use", "commercial use", why);
      if (q.redistribution) licenceWhy(m, "redistribution", "redistribution", why);
      var row = { model: m, fit: fit, value: priority.value(m, q.task, fit), tie: priority.tie(m, q.task, fit) };
      if (why.length) { row.why = why; excluded.push(row); } else { rows.push(row); }
    });
    function key(v) { return v === null ? -Infinity : v; }
    rows.sort(function (a, b) {
      return key(b.value) - key(a.value) || key(b.tie) - key(a.tie) || (a.model.name < b.model.name ? -1 : 1);
    });
    return { rows: rows, excluded: excluded, priority: priority.label };
  }

  function cell(tr, text) { var td = document.createElement("td"); td.textContent = text; tr.appendChild(td); return td; }
  function fmt(v, digits) { return v === null || v === undefined ? "n/a" : Number(v).toFixed(digits); }

  function renderBuyer(root, index, base) {
    var form = root.querySelector("form");
    var params = new URLSearchParams(location.search);
    ["ram_gb", "task", "priority"].forEach(function (k) { if (params.has(k)) form.elements[k].value = params.get(k); });
    ["commercial", "redistribution"].forEach(function (k) { if (params.has(k)) form.elements[k].checked = params.get(k) === "1"; });
    var tasks = {};
    (index.models || []).forEach(function (m) { Object.keys(m.evals || {}).forEach(function (p) { tasks[p] = true; }); });
    var select = form.elements.task, wanted = params.get("task") || select.value;
    Object.keys(tasks).sort().forEach(function (p) {
      var o = document.createElement("option"); o.value = p; o.textContent = p; select.appendChild(o);
    });
    select.value = wanted || "";

    function run(event) {
      if (event) event.preventDefault();
      var q = { ram_gb: parseFloat(form.elements.ram_gb.value) || 0, task: select.value,
        commercial: form.elements.commercial.checked, redistribution: form.elements.redistribution.checked,
        priority: form.elements.priority.value };
      var result = query(index, q);
      var body = root.querySelector("tbody");
      body.textContent = "";
      result.rows.forEach(function (r, i) {
        var tr = document.createElement("tr");
        tr.className = "rc-match";
        cell(tr, String(i + 1));
        var a = document.createElement("a");
        a.href = base + r.model.page;  /* a path the generator wrote, never card text */
        a.textContent = r.model.name + " " + r.model.version;
        var td = document.createElement("td"); td.appendChild(a); tr.appendChild(td);
        cell(tr, fmt(r.value, 3) + (r.tie !== null ? " (then " + fmt(r.tie, 3) + ")" : ""));
        cell(tr, (r.fit.bytes === null ? "n/a" : fmt(r.fit.bytes / 1e9, 2) + " GB") + " · " + r.fit.basis +
          (r.fit.quant ? " · " + r.fit.quant : ""));
        var terms = r.model.licence_terms || {};
        cell(tr, String(r.model.license) + " · commercial use (computed) " + (terms.commercial_use || "unknown") +
          ((r.model.licence_overrides || []).length ? " · publisher override: " + r.model.licence_overrides.join(", ") : ""));
        cell(tr, "✓ verified at build · receipt sha256 " + String(r.model.receipt_sha256).slice(0, 12) + "…").className = "rc-badge";
        body.appendChild(tr);
      });
      var notes = root.querySelector(".rc-excluded");
      notes.textContent = "";
      result.excluded.forEach(function (r) {
        var li = document.createElement("li");
        li.textContent = r.model.name + " " + r.model.version + ": " + r.why.join("; ");
        notes.appendChild(li);
      });
      root.querySelector(".rc-summary").textContent = result.rows.length + " model(s) match, ranked by " +
        result.priority + "; " + result.excluded.length + " excluded.";
      root.setAttribute("data-ready", "true");
    }
    form.addEventListener("submit", run);
    run();
  }

  function renderCompare(root, index, base) {
    var names = new URLSearchParams(location.search).getAll("m").slice(0, 4);
    var models = (index.models || []).filter(function (m) { return names.indexOf(m.name + "@" + m.version) >= 0; });
    var table = root.querySelector("table");
    var rows = [
      ["publisher", function (m) { return m.publisher; }],
      ["licence", function (m) { return m.license; }],
      ["commercial use (computed)", function (m) { var v = (m.licence_terms || {}).commercial_use || "unknown"; return v + ((m.licence_overrides || []).indexOf("commercial_use") >= 0 ? " (publisher override)" : ""); }],
      ["gate", function (m) { return m.gate; }],
      ["tasks (retention)", function (m) { return Object.keys(m.evals || {}).map(function (p) { return p + " " + fmt(m.evals[p].retention, 3); }).join(", ") || "none"; }],
      ["smallest measured peak RSS", function (m) { var f = memory(m, Infinity); return f.bytes === null ? "n/a" : fmt(f.bytes / 1e9, 2) + " GB (" + f.basis + ")"; }],
      ["fastest decode tok/s", function (m) { return fmt(Math.max.apply(null, (m.cost || []).map(function (p) { return num(p.decode_tps_p50) || 0; }).concat([0])) || null, 1); }]
    ];
    var head = document.createElement("tr");
    cell(head, "");
    models.forEach(function (m) {
      var th = document.createElement("th"), a = document.createElement("a");
      a.href = base + m.page; a.textContent = m.name + " " + m.version; th.appendChild(a); head.appendChild(th);
    });
    table.appendChild(head);
    rows.forEach(function (spec) {
      var tr = document.createElement("tr");
      cell(tr, spec[0]);
      models.forEach(function (m) { cell(tr, String(spec[1](m))); });
      table.appendChild(tr);
    });
    root.setAttribute("data-ready", "true");
  }

  async function run() {
    var root = document.querySelector("[data-rc-app]");
    if (!root) return;
    var base = root.getAttribute("data-base");
    var response = await fetch(base + "catalog/index.json", { cache: "no-store" });
    var index = await response.json();
    if (root.getAttribute("data-rc-app") === "buyer") renderBuyer(root, index, base);
    else renderCompare(root, index, base);
  }

  window.receiptsCatalog = { query: query, memory: memory, run: run };
  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(function () { run(); });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
})();
