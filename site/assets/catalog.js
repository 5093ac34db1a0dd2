/* receipts: the buyer query and side-by-side compare over the static catalog index (catalog/index.json).
 *
 * Buyer query: RAM budget x task (an eval pack) x licence permission x priority, ranked. A result row is ONE
 * quantization of one model (the index's ``quants``, from the signed quantization table), with that same
 * quantization's score, retention, precision/recall and measured peak RSS: pairing fp32's quality with
 * int8's memory would show a model nobody measured. A quantization benched but not evaluated is its own row
 * whose quality says so; a model with no quantization table falls back to the card's claimed hardware
 * profile, labelled as a claim. A row whose ranking value is missing (n/a) ranks last with its reason.
 *
 * The URL is the query: the form is filled from it, submitting pushes it into the address, back/forward
 * restore it, and a bad value in it gets a visible message, never a silent default. All text from the index
 * is inserted with textContent: nothing from a card becomes HTML or a link target except the generated page
 * path.
 */
(function () {
  "use strict";
  if (window.receiptsCatalog) return;

  function num(v) { return typeof v === "number" && isFinite(v) ? v : null; }
  function fmt(v, digits) { return num(v) === null ? "n/a" : Number(v).toFixed(digits); }
  function gb(bytes) { return fmt(bytes / 1e9, 2) + " GB"; }

  /* What each priority ranks by, read from one result row (r.pack: the row's numbers on the chosen task). */
  var PRIORITIES = {
    quality: { label: "student score", value: function (r) { return r.pack ? num(r.pack.score) : null; },
      tie: function (r) { return r.pack ? num(r.pack.retention) : null; } },
    precision: { label: "precision", value: function (r) { return extraction(r, "precision"); },
      tie: function (r) { return extraction(r, "recall"); } },
    recall: { label: "recall", value: function (r) { return extraction(r, "recall"); },
      tie: function (r) { return extraction(r, "precision"); } },
    retention: { label: "retention", value: function (r) { return r.pack ? num(r.pack.retention) : null; },
      tie: function (r) { return r.pack ? num(r.pack.score) : null; } },
    speed: { label: "decode tok/s", speed: true, value: function (r) { return r.fit.decode_tps; },
      tie: function (r) { return r.pack ? num(r.pack.score) : null; } }
  };
  var PRIORITY_ORDER = ["quality", "precision", "recall", "retention", "speed"];

  function extraction(r, key) { return r.pack && r.pack.extraction ? num(r.pack.extraction[key]) : null; }

  /* Why a row's ranking value is n/a, in words (shown beside it; the row ranks last). */
  function whyMissing(r, q, priority) {
    var task = q.task, at = r.quant ? " at " + r.quant : "";
    if (priority.speed) return "no decode speed measured" + at;
    if (!task) return "choose a task to rank by " + priority.label;
    if (!r.quant) return "no quantization of this model was evaluated (no signed quantization table)";
    if (!r.pack) {
      return Object.keys(r.packs).length ? "not evaluated on " + task + at
        : "not evaluated at this quantization (" + r.quant + " has memory measured only)";
    }
    if (r.pack.floor) return "every role scores 0 on " + task + ": this pack says nothing about these models";
    if (q.priority === "precision" || q.priority === "recall") {
      var e = r.pack.extraction;
      if (!e) return "no " + q.priority + " measured for " + task + " (not an extraction pack)";
      if (q.priority === "precision" && e.tp + e.fp === 0) {
        return "no precision measured for " + task + ": the student" + at + " extracted no fields (tp 0, fp 0)";
      }
      return "no " + q.priority + " measured for " + task + at;
    }
    if (q.priority === "retention") return "no retention on " + task + at + ": " + (r.pack.retention_reason || "none signed");
    return "no student score on " + task + at;
  }

  /* The memory one quantization needs: its smallest measured peak RSS (signed footprint points, status ok);
     where none was measured, a card hardware profile for the same quantization, labelled as the card's claim.
     `anyClaim` (a model with no measured memory at all) falls back to the card's smallest profile, named. */
  function memoryOf(m, quant, anyClaim) {
    var measured = ((quant && quant.memory) || []).filter(function (p) { return p.status === "ok" && num(p.peak_rss_bytes) !== null; });
    if (measured.length) {
      var best = measured.reduce(function (a, b) { return b.peak_rss_bytes < a.peak_rss_bytes ? b : a; });
      return { basis: "measured", bytes: best.peak_rss_bytes, hardware: best.hardware || best.hw_class,
        decode_tps: num(best.decode_tps_p50) };
    }
    var claimed = (m.hardware_profiles || []).filter(function (h) { return num(h.ram_gib) !== null; });
    var same = claimed.filter(function (h) { return quant && h.quantization === quant.quant; });
    var pool = same.length ? same : anyClaim ? claimed : [];
    if (pool.length) {
      var c = pool.reduce(function (a, b) { return b.ram_gib < a.ram_gib ? b : a; });
      return { basis: "claimed by the card", bytes: c.ram_gib * Math.pow(2, 30),
        hardware: String(c.name) + (c.quantization ? " (" + c.quantization + ")" : ""), decode_tps: null };
    }
    return { basis: "unknown", bytes: null, hardware: null, decode_tps: null };
  }

  function measuredAny(m) {
    return (m.quants || []).some(function (qr) {
      return (qr.memory || []).some(function (p) { return p.status === "ok" && num(p.peak_rss_bytes) !== null; });
    });
  }

  /* One candidate row per quantization the index lists; one model-level row where it lists none. */
  function candidates(m) {
    var quants = m.quants || [];
    if (!quants.length) return [{ model: m, quant: null, packs: {}, fit: memoryOf(m, null, true) }];
    var anyClaim = !measuredAny(m);
    return quants.map(function (qr) {
      return { model: m, quant: qr.quant, packs: qr.packs || {}, fit: memoryOf(m, qr, anyClaim) };
    });
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

  function label(r) { return r.model.name + " " + r.model.version + (r.quant ? " @ " + r.quant : ""); }

  /* q: a validated query {ram_gb, task, commercial, redistribution, priority}; returns
     {rows (ranked first, then n/a with .missing), excluded (each with .why), priority label}. */
  function query(index, q) {
    var budget = q.ram_gb * 1e9;
    var priority = PRIORITIES[q.priority];
    var rows = [], excluded = [];
    (index.models || []).forEach(function (m) {
      var why = [];
      if (q.task && !(m.evals || {})[q.task]) why.push("no receipt for task " + q.task);
      if (q.commercial) licenceWhy(m, "commercial_use", "commercial use", why);
      if (q.redistribution) licenceWhy(m, "redistribution", "redistribution", why);
      if (why.length) { excluded.push({ label: m.name + " " + m.version, model: m, why: why }); return; }
      candidates(m).forEach(function (r) {
        if (r.fit.bytes === null) {
          excluded.push({ label: label(r), model: m, why: [r.quant ? "no memory measured or claimed at " + r.quant : "no memory figure"] });
          return;
        }
        if (r.fit.bytes > budget) {
          excluded.push({ label: label(r), model: m, why: ["needs " + gb(r.fit.bytes) + " (" + r.fit.basis + "), more than " + q.ram_gb + " GB"] });
          return;
        }
        r.pack = q.task ? r.packs[q.task] || null : null;
        r.value = r.pack && r.pack.floor && !priority.speed ? null : priority.value(r);
        r.tie = priority.tie(r);
        if (r.value === null) r.missing = whyMissing(r, q, priority);
        rows.push(r);
      });
    });
    function key(v) { return v === null ? -Infinity : v; }
    rows.sort(function (a, b) {
      if ((a.value === null) !== (b.value === null)) return a.value === null ? 1 : -1;
      return key(b.value) - key(a.value) || key(b.tie) - key(a.tie) || (label(a) < label(b) ? -1 : label(a) > label(b) ? 1 : 0);
    });
    return { rows: rows, excluded: excluded, priority: priority.label };
  }

  /* --- the URL is the query ------------------------------------------------------------------------- */

  var DEFAULTS = { ram_gb: "16", task: "", priority: "quality", commercial: "", redistribution: "" };

  /* The task a query without one runs on: the pack most models have a signed retention for (then by name),
     the catalog table's default too (generator/listings.py), so the first screen ranks something. */
  function defaultTask(index) {
    var counts = {};
    (index.models || []).forEach(function (m) {
      Object.keys(m.evals || {}).forEach(function (p) {
        counts[p] = (counts[p] || 0) + (num((m.evals[p] || {}).retention) !== null ? 1 : 0);
      });
    });
    return Object.keys(counts).sort(function (a, b) { return counts[b] - counts[a] || (a < b ? -1 : 1); })[0] || "";
  }

  /* Read and check a query from URL parameters: {q, raw, errors}. Nothing invalid becomes a default; a
     query that names no task runs on `fallbackTask` (an empty task= in the address is "any"). */
  function parseQuery(params, tasks, fallbackTask) {
    var raw = {}, errors = [];
    Object.keys(DEFAULTS).forEach(function (k) { raw[k] = params.has(k) ? params.get(k) : DEFAULTS[k]; });
    if (!params.has("task") && fallbackTask) raw.task = fallbackTask;
    var text = raw.ram_gb.trim(), ram = Number(text);
    if (text === "") errors.push("RAM budget is empty: give a number of GB, e.g. 16.");
    else if (!/^[+-]?(\d+\.?\d*|\.\d+)$/.test(text) || !isFinite(ram)) errors.push("RAM budget \u201c" + raw.ram_gb + "\u201d is not a number of GB: give one such as 16 or 0.5.");
    else if (ram <= 0) errors.push("RAM budget must be more than 0 GB (got " + text + ").");
    if (raw.task && tasks.indexOf(raw.task) < 0) {
      errors.push("No task \u201c" + raw.task + "\u201d in this catalog: choose one of " + (tasks.join(", ") || "(none)") + ".");
    }
    if (PRIORITY_ORDER.indexOf(raw.priority) < 0) {
      errors.push("No priority \u201c" + raw.priority + "\u201d: choose one of " + PRIORITY_ORDER.join(", ") + ".");
    }
    ["commercial", "redistribution"].forEach(function (k) {
      if (["", "0", "1"].indexOf(raw[k]) < 0) errors.push(k + " must be 1 (required) or 0, not \u201c" + raw[k] + "\u201d.");
    });
    var q = { ram_gb: ram, task: raw.task, priority: raw.priority, commercial: raw.commercial === "1",
      redistribution: raw.redistribution === "1" };
    return { q: q, raw: raw, errors: errors };
  }

  function formParams(form) {
    var p = new URLSearchParams();
    p.set("ram_gb", form.elements.ram_gb.value);
    p.set("task", form.elements.task.value);  /* empty: any task, said so (no task= would mean the default) */
    if (form.elements.commercial.checked) p.set("commercial", "1");
    if (form.elements.redistribution.checked) p.set("redistribution", "1");
    p.set("priority", form.elements.priority.value);
    return p;
  }

  /* The query as a link: every value it ran with, defaults included, in one order. */
  function canonical(raw) {
    var p = new URLSearchParams();
    p.set("ram_gb", raw.ram_gb.trim());
    p.set("task", raw.task);
    if (raw.commercial === "1") p.set("commercial", "1");
    if (raw.redistribution === "1") p.set("redistribution", "1");
    p.set("priority", raw.priority);
    return p;
  }

  function fillForm(form, raw) {
    form.elements.ram_gb.value = raw.ram_gb;
    form.elements.task.value = raw.task;  /* an unknown task leaves the select as it is: the message says so */
    if (form.elements.task.value !== raw.task) form.elements.task.value = "";
    form.elements.priority.value = PRIORITY_ORDER.indexOf(raw.priority) >= 0 ? raw.priority : "quality";
    form.elements.commercial.checked = raw.commercial === "1";
    form.elements.redistribution.checked = raw.redistribution === "1";
  }

  /* --- rendering ------------------------------------------------------------------------------------ */

  function cell(tr, text, col) {
    var td = document.createElement("td");
    td.textContent = text;
    if (col) td.setAttribute("data-col", col);
    tr.appendChild(td);
    return td;
  }

  function pageLink(base, m, text) {
    var a = document.createElement("a");
    a.href = base + m.page;  /* a path the generator wrote, never card text */
    a.textContent = text;
    return a;
  }

  function memoryCell(td, fit) {
    if (fit.bytes === null) { figure(td, "memory-value", "", "n/a"); return; }
    figure(td, "memory-value", "peak RSS", gb(fit.bytes) + " " + fit.basis);
    if (fit.hardware) figure(td, "hardware", "on", String(fit.hardware));
  }

  function retentionText(p) {
    if (!p) return "n/a";
    if (num(p.retention) === null) return "n/a: " + (p.retention_reason || "none signed");
    var ci = p.retention_ci;
    return fmt(p.retention, 3) + (ci ? " [" + fmt(ci[0], 3) + ", " + fmt(ci[1], 3) + "]" : " (no CI signed)");
  }

  /* One figure of a row, as its own line with a label, so a phone shows it stacked and a test can read it. */
  function figure(td, col, name, text) {
    var line = document.createElement("span");
    line.className = "rc-figure";
    line.setAttribute("data-col", col);
    var key = document.createElement("span");
    key.className = "rc-figure-name";
    key.textContent = name + " ";
    var value = document.createElement("span");
    value.className = "rc-figure-value";
    value.textContent = text;
    line.appendChild(key);
    line.appendChild(value);
    td.appendChild(line);
  }

  function resultRow(r, rank, base, task) {
    var tr = document.createElement("tr"), p = r.pack, e = p && p.extraction;
    tr.className = "rc-match" + (r.value === null ? " rc-unranked" : "");
    cell(tr, r.value === null ? "last" : String(rank), "rank").setAttribute("data-label", "rank");
    var td = cell(tr, "", "model");
    td.setAttribute("data-label", "model");
    td.appendChild(pageLink(base, r.model, r.model.name + " " + r.model.version));
    figure(td, "quant", "quantization", r.quant || "not stated");
    cell(tr, r.value === null ? "n/a: " + r.missing : fmt(r.value, PRIORITIES.speed.value(r) === r.value ? 1 : 3) +
      (r.tie !== null ? " (then " + fmt(r.tie, 3) + ")" : ""), "value").setAttribute("data-label", "ranked by");
    var numbers = cell(tr, "", "numbers");
    numbers.setAttribute("data-label", task ? "on " + task : "numbers");
    if (!task) figure(numbers, "score", "", "choose a task to see its scores");
    else if (!p) figure(numbers, "score", "", "not evaluated on " + task + (r.quant ? " at " + r.quant : ""));
    else {
      figure(numbers, "score", "student", fmt(p.score, 3) + (p.metric ? " " + p.metric : ""));
      figure(numbers, "teacher", "teacher", fmt(p.teacher, 3));
      figure(numbers, "retention", "retention [95% CI]", retentionText(p));
      if (e) {
        figure(numbers, "precision", "precision", fmt(e.precision, 3));
        figure(numbers, "recall", "recall", fmt(e.recall, 3));
      }
    }
    var mem = cell(tr, "", "memory");
    mem.setAttribute("data-label", "memory");
    memoryCell(mem, r.fit);
    var terms = r.model.licence_terms || {}, lic = cell(tr, "", "licence");
    lic.setAttribute("data-label", "licence");
    figure(lic, "licence-id", "", String(r.model.license));
    figure(lic, "commercial", "commercial use (computed)", (terms.commercial_use || "unknown") +
      ((r.model.licence_overrides || []).length ? " · publisher override: " + r.model.licence_overrides.join(", ") : ""));
    figure(lic, "receipt", "✓ verified at build · receipt", "sha256 " + String(r.model.receipt_sha256).slice(0, 12) + "…");
    lic.lastChild.classList.add("rc-badge");
    return tr;
  }

  function showErrors(root, errors) {
    var list = root.querySelector(".rc-errors");
    list.textContent = "";
    errors.forEach(function (text) { var li = document.createElement("li"); li.textContent = text; list.appendChild(li); });
    list.hidden = !errors.length;
  }

  function showResults(root, index, parsed, base) {
    var body = root.querySelector("tbody"), notes = root.querySelector(".rc-excluded");
    body.textContent = "";
    notes.textContent = "";
    showErrors(root, parsed.errors);
    root.querySelector("table.rc-results").hidden = !!parsed.errors.length;
    if (parsed.errors.length) {
      root.querySelector(".rc-summary").textContent = "No results: fix the query above.";
      return;
    }
    var result = query(index, parsed.q), ranked = 0;
    result.rows.forEach(function (r) { if (r.value !== null) ranked += 1; body.appendChild(resultRow(r, ranked, base, parsed.q.task)); });
    result.excluded.forEach(function (r) {
      var li = document.createElement("li");
      li.textContent = r.label + ": " + r.why.join("; ");
      notes.appendChild(li);
    });
    root.querySelector(".rc-summary").textContent = result.rows.length + " row(s) (one per quantization) match, " +
      ranked + " ranked by " + result.priority + (parsed.q.task ? " on " + parsed.q.task : "") + ", " +
      (result.rows.length - ranked) + " n/a (last, with the reason); " + result.excluded.length + " excluded.";
  }

  function showLink(root, params) {
    var a = root.querySelector(".rc-permalink");
    var search = "?" + params.toString();
    a.href = search;  /* this page with the query the results show */
    a.textContent = search;
  }

  function taskList(index) {
    var tasks = {};
    (index.models || []).forEach(function (m) { Object.keys(m.evals || {}).forEach(function (p) { tasks[p] = true; }); });
    return Object.keys(tasks).sort();
  }

  function renderBuyer(root, index, base) {
    if (root.receiptsShow) { root.receiptsShow(); return; }  /* already wired (run() again on the same page) */
    var form = root.querySelector("form"), select = form.elements.task, tasks = taskList(index);
    var fallback = defaultTask(index);
    tasks.forEach(function (p) {
      var o = document.createElement("option"); o.value = p; o.textContent = p; select.appendChild(o);
    });
    function show(params) {
      var parsed = parseQuery(params, tasks, fallback);
      fillForm(form, parsed.raw);
      showResults(root, index, parsed, base);
      showLink(root, parsed.errors.length ? params : canonical(parsed.raw));
      root.setAttribute("data-ready", "true");
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var params = formParams(form);
      if ("?" + params.toString() !== location.search) history.pushState(null, "", "?" + params.toString());
      show(params);
    });
    root.receiptsShow = function () { show(new URLSearchParams(location.search)); };
    root.receiptsShow();
  }

  /* Back/forward within the buyer page: the address is the query, so show what it says. */
  window.addEventListener("popstate", function () {
    var root = document.querySelector("[data-rc-app=buyer]");
    if (root && root.receiptsShow) root.receiptsShow();
  });

  /* --- compare -------------------------------------------------------------------------------------- */

  var MAX_COMPARE = 4;

  function smallestMemory(m) {
    var best = null;
    (m.quants || []).forEach(function (qr) {
      var fit = memoryOf(m, qr, false);
      if (fit.basis === "measured" && (best === null || fit.bytes < best.fit.bytes)) best = { fit: fit, quant: qr.quant };
    });
    if (best) return gb(best.fit.bytes) + " at " + best.quant + " (measured on " + best.fit.hardware + ")";
    var claimed = memoryOf(m, null, true);
    return claimed.bytes === null ? "not measured" : gb(claimed.bytes) + " (claimed by the card, not measured)";
  }

  function fastest(m) {
    var best = null;
    (m.quants || []).forEach(function (qr) {
      var fit = memoryOf(m, qr, false);
      if (fit.decode_tps !== null && (best === null || fit.decode_tps > best.tps)) best = { tps: fit.decode_tps, quant: qr.quant };
    });
    return best ? fmt(best.tps, 1) + " tok/s at " + best.quant + " (measured)" : "not measured";
  }

  /* Per pack: the same figure for each quantization of the model, "fp32 0.438 · int8-dynamic 0.305". */
  function perQuant(m, pack, text) {
    var parts = (m.quants || []).filter(function (qr) { return (qr.packs || {})[pack]; }).map(function (qr) {
      return qr.quant + " " + text(qr.packs[pack]);
    });
    return parts.join(" · ") || "not evaluated";
  }

  function teacherOf(m, pack) {
    var found = null;
    (m.quants || []).forEach(function (qr) { var p = (qr.packs || {})[pack]; if (p && found === null) found = p; });
    var scores = ((m.evals || {})[pack] || {}).scores || {};
    var t = found ? found.teacher : scores.teacher;
    var floor = found && found.floor ? " (every role scores 0 on this pack: it says nothing about these models)" : "";
    return num(t) === null ? "not evaluated" : fmt(t, 3) + floor;
  }

  function compareRows(models) {
    var packs = {};
    models.forEach(function (m) { Object.keys(m.evals || {}).forEach(function (p) { packs[p] = true; }); });
    var rows = [
      ["publisher", function (m) { return m.publisher; }],
      ["licence", function (m) { return m.license; }],
      ["commercial use (computed)", function (m) { var v = (m.licence_terms || {}).commercial_use || "unknown"; return v + ((m.licence_overrides || []).indexOf("commercial_use") >= 0 ? " (publisher override)" : ""); }],
      ["gate", function (m) { return m.gate; }]
    ];
    Object.keys(packs).sort().forEach(function (p) {
      rows.push([p + ": teacher score", function (m) { return teacherOf(m, p); }]);
      rows.push([p + ": student score", function (m) { return perQuant(m, p, function (x) { return fmt(x.score, 3); }); }]);
      rows.push([p + ": retention [95% CI]", function (m) { return perQuant(m, p, retentionText); }]);
    });
    rows.push(["smallest measured peak RSS", smallestMemory]);
    rows.push(["fastest decode tok/s", fastest]);
    return rows;
  }

  function renderCompare(root, index, base) {
    var asked = new URLSearchParams(location.search).getAll("m"), errors = [], models = [];
    var byName = {};
    (index.models || []).forEach(function (m) { byName[m.name + "@" + m.version] = m; });
    if (asked.length > MAX_COMPARE) errors.push("Compare shows at most " + MAX_COMPARE + " models; this address names " + asked.length + ": remove some m= values.");
    else {
      asked.forEach(function (name) {
        if (!Object.prototype.hasOwnProperty.call(byName, name)) errors.push("No model " + name + " in this catalog (give m=NAME@VERSION).");
        else if (models.indexOf(byName[name]) >= 0) errors.push(name + " is named twice; it is shown once.");
        else models.push(byName[name]);
      });
    }
    if (!asked.length) errors.push("No models named: add ?m=NAME@VERSION to the address, 2 to 4 times.");
    showErrors(root, errors);
    var table = root.querySelector("table");
    table.textContent = "";
    if (models.length) {
      var head = document.createElement("tr");
      cell(head, "");
      models.forEach(function (m) {
        var th = document.createElement("th");
        th.appendChild(pageLink(base, m, m.name + " " + m.version));
        head.appendChild(th);
      });
      table.appendChild(head);
      compareRows(models).forEach(function (spec) {
        var tr = document.createElement("tr");
        cell(tr, spec[0]).className = "rc-rowhead";
        models.forEach(function (m) { cell(tr, String(spec[1](m))); });
        table.appendChild(tr);
      });
    }
    root.setAttribute("data-ready", "true");
  }

  /* The index, once fetched, is kept for this page session: instant navigation (back/forward included)
     swaps in a fresh page, which is then drawn in the same task, so it never shows the form's defaults. */
  var loaded = {};

  function draw(root, index, base) {
    if (root.getAttribute("data-rc-app") === "buyer") renderBuyer(root, index, base);
    else renderCompare(root, index, base);
  }

  async function run() {
    var root = document.querySelector("[data-rc-app]");
    if (!root) return;
    var base = root.getAttribute("data-base");
    if (Object.prototype.hasOwnProperty.call(loaded, base)) { draw(root, loaded[base], base); return; }
    var response = await fetch(base + "catalog/index.json", { cache: "no-store" });
    var index = await response.json();
    loaded[base] = index;
    if (document.querySelector("[data-rc-app]") === root) draw(root, index, base);
  }

  window.receiptsCatalog = { query: query, memory: memoryOf, parseQuery: parseQuery, run: run };
  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(function () { run(); });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
})();
