/* receipts: verify the receipt of a catalog page in the reader's browser (WebCrypto).
 *
 * Same algorithm as `receipts verify` (DESIGN §6), on what the page carries and the files it publishes:
 *   1. secure context and WebCrypto present, else "cannot verify here" (never "verified");
 *   2. the published receipt.json is the one the page was built from (its sha256 is in the page), and
 *      parses strictly as a DSSE envelope;
 *   3. the trust root embedded in the page hashes to the sha256 the page names (pin it with the CLI);
 *   4. signatures: PAE(payloadType, payload) verified with ECDSA P-256/SHA-256 (DER -> raw r||s) or
 *      Ed25519, by active trusted keys whose window holds issuedAt; unique keys >= threshold;
 *   5. the statement: in-toto v1, the receipts predicate, name/version equal to the page's;
 *   6. every subject file published next to the receipt hashes to its signed sha256, the files agree
 *      (bindings), and each run's headline scores and retention follow from its examples log.
 * Any doubt is a failure with its reason. Runs on load and again after Material's instant navigation.
 * Only after every step passed, the box says whether the page's marked figures (the card's label: model,
 * per run the primary metric, each role's score, the retention and its CI, the gain over SFT, the local
 * cost) are the signed ones, made exactly as generator/figures.py makes them (same keys, same strings),
 * with the signed figures folded under it, and lists where the page's text differs. Everything is built with DOM nodes and textContent, never parsed as HTML.
 */
(function () {
  "use strict";
  if (window.receiptsVerify) return;  // loaded twice (page script tag and mkdocs extra_javascript)

  var STATEMENT_TYPE = "https://in-toto.io/Statement/v1";
  var PREDICATE_TYPE = "https://receipts.dev/predicate/distillation-receipt/v1";
  var PAYLOAD_TYPE = "application/vnd.in-toto+json";
  var P256_N = BigInt("0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551");

  function Fail(reason) { this.reason = reason; }

  function fail(reason) { throw new Fail(reason); }

  function b64decode(text) {
    if (typeof text !== "string" || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(text)) fail("invalid base64");
    if (/[+/]/.test(text) && /[-_]/.test(text)) fail("base64 mixes alphabets");
    var std = text.replace(/-/g, "+").replace(/_/g, "/");
    while (std.length % 4) std += "=";
    var bin;
    try { bin = atob(std); } catch (e) { fail("invalid base64"); }
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    if (btoa(bin).replace(/=+$/, "") !== std.replace(/=+$/, "")) fail("non-canonical base64 (unused bits set)");
    return out;
  }

  /* UTF-8 that keeps a byte-order mark (TextDecoder drops it by default), so strictJSON can refuse it. */
  function utf8(bytes) { return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes); }

  function hex(buffer) {
    return Array.prototype.map.call(new Uint8Array(buffer), function (b) {
      return b.toString(16).padStart(2, "0");
    }).join("");
  }

  async function sha256(bytes) { return hex(await crypto.subtle.digest("SHA-256", bytes)); }

  function concat(parts) {
    var size = parts.reduce(function (n, p) { return n + p.length; }, 0);
    var out = new Uint8Array(size), at = 0;
    parts.forEach(function (p) { out.set(p, at); at += p.length; });
    return out;
  }

  /* DSSE pre-authentication encoding: "DSSEv1" SP len(type) SP type SP len(body) SP body */
  function pae(type, body) {
    var enc = new TextEncoder();
    var t = enc.encode(type);
    return concat([enc.encode("DSSEv1 " + t.length + " "), t, enc.encode(" " + body.length + " "), body]);
  }

  /* Strict DER ECDSA-Sig-Value -> 64-byte r||s (P-256). Minimal encodings only; 0 < r, s < n. */
  function derToRaw(der) {
    var i = 0;
    function byte() { if (i >= der.length) throw new Error("short"); return der[i++]; }
    function length() {
      var first = byte();
      if (first < 0x80) return first;
      if (first !== 0x81) throw new Error("length form");
      var len = byte();
      if (len < 0x80) throw new Error("non-minimal length");
      return len;
    }
    function integer() {
      if (byte() !== 0x02) throw new Error("not an INTEGER");
      var len = length();
      if (len < 1 || len > 33 || i + len > der.length) throw new Error("integer length");
      var value = der.slice(i, i + len);
      i += len;
      if (value[0] & 0x80) throw new Error("negative");
      if (len > 1 && value[0] === 0 && !(value[1] & 0x80)) throw new Error("non-minimal integer");
      var big = BigInt("0x" + (hex(value) || "0"));
      if (big <= 0n || big >= P256_N) throw new Error("out of range");
      var trimmed = value[0] === 0 ? value.slice(1) : value;
      if (trimmed.length > 32) throw new Error("too long");
      var out = new Uint8Array(32);
      out.set(trimmed, 32 - trimmed.length);
      return out;
    }
    if (byte() !== 0x30) throw new Error("not a SEQUENCE");
    var total = length();
    if (i + total !== der.length) throw new Error("trailing bytes");
    var r = integer(), s = integer();
    if (i !== der.length) throw new Error("trailing bytes");
    return concat([r, s]);
  }

  /* JSON as the CLI reads it: no byte-order mark, no key twice in an object (JSON.parse would silently
     keep the last one, so a signed document could be read two ways). */
  function strictJSON(text, what) {
    if (text.charCodeAt(0) === 0xfeff) fail(what + " starts with a byte-order mark");
    var value;
    try { value = JSON.parse(text); } catch (e) { fail(what + " is not JSON"); }
    var i = 0, stack = [];
    while (i < text.length) {
      var ch = text[i];
      if (ch === '"') {
        var j = i + 1;
        while (j < text.length && text[j] !== '"') j += text[j] === "\\" ? 2 : 1;
        var top = stack[stack.length - 1];
        if (top && top.expectKey) {
          var key = JSON.parse(text.slice(i, j + 1));
          if (top.keys.has(key)) fail(what + " has the key " + JSON.stringify(key) + " twice");
          top.keys.add(key);
          top.expectKey = false;
        }
        i = j + 1;
        continue;
      }
      if (ch === "{") stack.push({ keys: new Set(), expectKey: true });
      else if (ch === "[") stack.push(null);
      else if (ch === "}" || ch === "]") stack.pop();
      else if (ch === ",") { var t = stack[stack.length - 1]; if (t) t.expectKey = true; }
      i++;
    }
    return value;
  }

  /* An RFC 3339 UTC instant in whole seconds that exists: what the statement's issuedAt and the trust
   * root's $defs/time take, and the CLI with them. No fractional second; 2026-02-30 and year 0000 match
   * the pattern and are refused (Date takes year 0; Python's datetime and jsonschema's date-time do not). */
  function instant(text, what) {
    if (typeof text !== "string" || !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(text)) fail(what + " is not an RFC 3339 UTC time");
    var t = Date.parse(text);
    if (isNaN(t) || text.slice(0, 4) === "0000" || new Date(t).toISOString().slice(0, 19) + "Z" !== text) {
      fail(what + " " + text + " is not a real instant");
    }
    return t;
  }

  function canonicalJSON(value) {
    if (Array.isArray(value)) return "[" + value.map(canonicalJSON).join(",") + "]";
    if (value && typeof value === "object") {
      return "{" + Object.keys(value).sort().map(function (k) { return JSON.stringify(k) + ":" + canonicalJSON(value[k]); }).join(",") + "}";
    }
    return JSON.stringify(value);
  }

  function exactKeys(obj, keys, what) {
    if (!obj || typeof obj !== "object" || Array.isArray(obj)) fail(what + " is not an object");
    var have = Object.keys(obj).sort().join(","), want = keys.slice().sort().join(",");
    if (have !== want) fail(what + " has keys [" + have + "], expected [" + want + "]");
  }

  function pemBody(pem) {
    var m = /^-----BEGIN PUBLIC KEY-----\s*([A-Za-z0-9+/=\s]+)-----END PUBLIC KEY-----\s*$/.exec(pem || "");
    if (!m) fail("a trust-root key is not an SPKI PEM");
    return b64decode(m[1].replace(/\s+/g, ""));
  }

  async function importKey(entry) {
    var der = pemBody(entry.publicKey);
    if (entry.algorithm === "ecdsa-p256-sha256") {
      return { alg: { name: "ECDSA", hash: "SHA-256" }, ecdsa: true,
        key: await crypto.subtle.importKey("spki", der, { name: "ECDSA", namedCurve: "P-256" }, false, ["verify"]) };
    }
    if (entry.algorithm === "ed25519") {
      return { alg: { name: "Ed25519" }, ecdsa: false,
        key: await crypto.subtle.importKey("spki", der, { name: "Ed25519" }, false, ["verify"]) };
    }
    fail("unsupported key algorithm " + entry.algorithm);
  }

  function within(entry, issued) {
    var t = Date.parse(issued);
    if (entry.notBefore && t < Date.parse(entry.notBefore)) return false;
    if (entry.notAfter && t >= Date.parse(entry.notAfter)) return false;
    return true;
  }

  async function fetchBytes(url) {
    var response = await fetch(url, { cache: "no-store", credentials: "omit" });
    if (!response.ok) fail("could not fetch " + url + " (HTTP " + response.status + ")");
    return new Uint8Array(await response.arrayBuffer());
  }

  async function verifyPage(box) {
    if (!window.isSecureContext || !window.crypto || !crypto.subtle) {
      return { state: "cannot", text: "Cannot verify here: this page is not served over a secure origin " +
        "(https or localhost), so the browser offers no WebCrypto. Verify with the CLI instead." };
    }
    var rootBytes = b64decode(box.getAttribute("data-trust-root"));
    var bundle = box.getAttribute("data-receipt").replace(/receipt\.json$/, "");
    var published = await fetchBytes(box.getAttribute("data-receipt"));
    if ((await sha256(published)) !== box.getAttribute("data-receipt-sha256")) {
      fail("the published receipt.json is not the receipt this page was built from");
    }
    var envelopeText = utf8(published);

    if ((await sha256(rootBytes)) !== box.getAttribute("data-trust-sha256")) {
      fail("the trust root on this page does not hash to the sha256 it names");
    }
    var root = strictJSON(utf8(rootBytes), "trust root").signed;
    if (!root || !Array.isArray(root.keys)) fail("malformed trust root");
    for (var r = 0; r < root.keys.length; r++) {
      var keyEntry = root.keys[r];
      if ("sha256:" + (await sha256(pemBody(keyEntry.publicKey))) !== keyEntry.keyid) {
        fail("trust root: key entry " + keyEntry.keyid + " does not carry the key it names");
      }
      ["notBefore", "notAfter", "revokedAt"].forEach(function (f) {
        if (keyEntry[f] !== undefined) instant(keyEntry[f], "trust root: " + keyEntry.keyid + " " + f);
      });
    }

    var env = strictJSON(envelopeText, "envelope");
    exactKeys(env, ["payload", "payloadType", "signatures"], "envelope");
    if (env.payloadType !== PAYLOAD_TYPE) fail("payloadType is not " + PAYLOAD_TYPE);
    if (!Array.isArray(env.signatures) || env.signatures.length < 1 || env.signatures.length > 8) {
      fail("envelope must hold 1 to 8 signatures");
    }
    var payload = b64decode(env.payload);
    var message = pae(env.payloadType, payload);
    // signatures first, over the bytes as received; only then is the payload parsed
    var valid = [];
    for (var k = 0; k < env.signatures.length; k++) {
      var sig = env.signatures[k];
      exactKeys(sig, ["keyid", "sig"], "signature " + k);
      var entry = root.keys.find(function (e) { return e.keyid === sig.keyid; });
      if (!entry || entry.status !== "active") continue;
      var imported = await importKey(entry);
      var raw = b64decode(sig.sig);
      if (imported.ecdsa) {
        try { raw = derToRaw(raw); } catch (e) { continue; }
      }
      if (await crypto.subtle.verify(imported.alg, imported.key, raw, message)) valid.push(entry);
    }
    if (!valid.length) fail("signatures: 0 valid trusted key(s)");
    var statement = strictJSON(utf8(payload), "statement");
    exactKeys(statement, ["_type", "predicate", "predicateType", "subject"], "statement");
    if (statement._type !== STATEMENT_TYPE) fail("not an in-toto Statement v1");
    if (statement.predicateType !== PREDICATE_TYPE) fail("predicateType is not the receipts predicate");
    var predicate = statement.predicate || {};
    var keys = Object.keys(predicate);
    PREDICATE_REQUIRED.forEach(function (k) { if (keys.indexOf(k) < 0) fail("schema: the predicate has no " + k); });
    keys.forEach(function (k) {
      if (PREDICATE_REQUIRED.indexOf(k) < 0 && PREDICATE_OPTIONAL.indexOf(k) < 0) fail("schema: unexpected predicate field " + k);
    });
    CARD_REQUIRED.forEach(function (k) {
      if (!predicate.card || !(k in predicate.card)) fail("schema: the signed card has no " + k);
    });
    var issuedAt = instant(predicate.issuedAt, "issuedAt");
    if (issuedAt > Date.now() + 5 * 60 * 1000) fail("issuedAt " + predicate.issuedAt + " is in the future");
    var issued = predicate.issuedAt;
    var claimed = ((predicate.signer || {}).keyids) || [];
    var good = new Set();
    valid.forEach(function (entry) {
      if (within(entry, issued) && claimed.indexOf(entry.keyid) >= 0) good.add(entry.keyid);
    });
    if (good.size < (root.threshold || 1)) {
      fail("signatures: " + good.size + " valid trusted key(s) in their validity window, threshold " +
        (root.threshold || 1));
    }

    var model = predicate.model || {};
    if (model.name !== box.getAttribute("data-name") || model.version !== box.getAttribute("data-version")) {
      fail("this receipt is for " + model.name + "@" + model.version + ", not for this page");
    }
    var cardModel = (predicate.card || {}).model || {};
    if (cardModel.name !== model.name || cardModel.version !== model.version) {
      fail("the signed card is for " + cardModel.name + "@" + cardModel.version + ", the statement for " + model.name + "@" + model.version);
    }
    // the card's publisher is the trust root's (receipts/binding.py: exactly, after NFC)
    var plain = function (t) { return String(t).normalize("NFC"); };
    if (plain(cardModel.publisher) !== plain(root.publisher) || model.publisher !== cardModel.publisher) {
      fail("the card says it is published by " + JSON.stringify(cardModel.publisher) +
        ", but the trust root is " + JSON.stringify(root.publisher) + "'s");
    }
    var names = new Set(), cards = 0, files = {};
    statement.subject.forEach(function (sub) {
      if (names.has(sub.name)) fail("subject " + sub.name + " is listed twice");
      names.add(sub.name);
      if ((sub.annotations || {}).kind === "card") cards++;
    });
    if (cards !== 1) fail("the statement must bind exactly one card file, it binds " + cards);
    var checked = 0;
    for (var i = 0; i < statement.subject.length; i++) {
      var subject = statement.subject[i];
      var kind = (subject.annotations || {}).kind;
      if (kind === "weights" || kind === "pack") continue;
      // a safe relative name, spelled one way (receipts/paths.py): no "", "." or ".." segment, no "\\"
      var segments = String(subject.name).split("/");
      if (subject.name === "receipt.json" || !segments.every(function (seg) {
        return /^[A-Za-z0-9._@+-]+$/.test(seg) && seg !== "." && seg !== "..";
      })) {
        fail("subject name " + JSON.stringify(subject.name) + " is not a safe relative path");
      }
      var bytes = await fetchBytes(bundle + subject.name);
      if ((await sha256(bytes)) !== subject.digest.sha256) fail("subject " + subject.name + " does not match its signed sha256");
      files[subject.name] = bytes;
      checked++;
    }
    await checkBindings(statement, files);
    return { state: "verified", predicate: predicate, files: files, text: "Verified in your browser: " +
      good.size + " trusted signature(s) of " + root.publisher + " (trust root v" + root.version + "), " +
      "statement for " + model.name + "@" + model.version + ", " + checked + " bound file(s) match and " +
      "agree, headline scores re-derived from the examples (card.yaml against the signed card, CIs and the " +
      "gate, a published pack's licence: checked at build)." };
  }

  var PREDICATE_REQUIRED = ["model", "issuedAt", "signer", "card", "runs", "footprints", "gate", "generator"];
  var PREDICATE_OPTIONAL = ["weights", "quantization", "licence"];  // licence: recomputed by the CLI verifier (receipts.licences)
  var CARD_REQUIRED = ["format", "model", "lineage", "training_data", "license", "task_boundary",
    "intended_use", "failure_modes", "hardware_profiles", "update_history"];

  function ofKind(statement, kind) {
    return statement.subject.filter(function (s) { return (s.annotations || {}).kind === kind; });
  }

  var NUMBER_TOLERANCE = 1e-6;  // receipts.derive.TOLERANCE: the signed numbers are rounded to 6 places
  var MAX_ROWS = 2000000;  // receipts.evidence.MAX_ROWS
  var RETENTION_MIN_GAP = 0.01;  // receipts.metrics.retention.RETENTION_MIN_GAP

  /* The cheap part of the CLI's "numbers" check: each role's headline score (the mean of the primary
     metric over the original items every role scored, as receipts.derive computes it) and the student's
     retention (S - B)/(T - B) where it is signed, recomputed from the signed examples log and held to both
     the statement's run summary and results.json's. CIs, slices and the gate need the bootstrap: the CLI
     re-derives those. */
  function checkHeadline(entry, results, examples) {
    var where = "numbers: " + entry.results;
    var primary = results.primary_metric;
    var lines = utf8(examples).split("\n");
    if (lines.length > MAX_ROWS + 1) fail(where + ": the examples log holds more than " + MAX_ROWS + " rows");
    var rows = [], first = new Map();
    lines.forEach(function (line, i) {
      if (!line.trim()) return;
      var row = strictJSON(line, entry.examples + " line " + (i + 1));
      // as receipts.derive: one row per (item, variant); a repeat would count twice in one mean and not the other
      var key = JSON.stringify([record(row).item, record(row).variant]);
      if (first.has(key)) {
        fail(where + ": " + entry.examples + " line " + (i + 1) + " repeats item " + JSON.stringify(record(row).item) +
          ", variant " + JSON.stringify(record(row).variant) + " (first on line " + first.get(key) +
          "): an examples log has one row per item and variant");
      }
      first.set(key, i + 1);
      rows.push(row);
    });
    var roles = {};
    rows.forEach(function (row) { Object.keys(record(row.roles)).forEach(function (r) { roles[r] = true; }); });
    var names = Object.keys(roles).sort();
    var sums = {}, n = 0;
    names.forEach(function (r) { sums[r] = 0; });
    rows.forEach(function (row) {
      if (row.variant !== "original") return;
      var cells = record(row.roles);
      if (names.some(function (r) { return "error" in record(cells[r]); })) return;  // as derive: failed rows out
      var values = names.map(function (r) { return record(record(cells[r]).scores)[primary]; });
      if (!values.every(function (v) { return typeof v === "number" && isFinite(v); })) return;
      names.forEach(function (r, k) { sums[r] += values[k]; });
      n++;
    });
    var derived = {};
    if (n) names.forEach(function (r) { derived[r] = sums[r] / n; });
    [["the statement", record(entry.summary)], [entry.results, record(results.summary)]].forEach(function (pair) {
      var scores = record(pair[1].scores);
      var signedRoles = Object.keys(scores).sort(), derivedRoles = Object.keys(derived).sort();
      if (signedRoles.join("\u001f") !== derivedRoles.join("\u001f")) {
        fail(where + ": " + pair[0] + " signs scores of " + (signedRoles.join(", ") || "no role") +
          "; the examples log scores " + (derivedRoles.join(", ") || "no role"));
      }
      signedRoles.forEach(function (r) {
        if (typeof scores[r] !== "number" || Math.abs(scores[r] - derived[r]) > NUMBER_TOLERANCE) {
          fail(where + ": " + pair[0] + " signs " + r + " " + primary + " " + scores[r] +
            "; the examples log gives " + Number(derived[r].toFixed(6)));
        }
      });
      var retention = pair[1].retention;
      if (typeof retention === "number" && "base" in derived && "student" in derived) {
        var gap = derived.teacher - derived.base;
        // derive's null rule (receipts.metrics.retention): |T - B| under RETENTION_MIN_GAP has no retention.
        // Its other rule (the gap's bootstrap CI contains 0) needs the seeded bootstrap: checked at build.
        if (Math.abs(gap) < RETENTION_MIN_GAP - 1e-12) {
          fail(where + ": " + pair[0] + " signs student retention " + retention + "; the examples log gives " +
            "none: teacher and base differ by " + Number(Math.abs(gap).toFixed(6)) + ", less than " +
            RETENTION_MIN_GAP + " (retention's null rule)");
        }
        var value = gap ? (derived.student - derived.base) / gap : NaN;
        if (!(Math.abs(retention - value) <= NUMBER_TOLERANCE)) {
          fail(where + ": " + pair[0] + " signs student retention " + retention +
            "; the examples log gives " + (isFinite(value) ? Number(value.toFixed(6)) : "none"));
        }
      }
    });
  }

  /* Cross-file consistency, as the CLI's "bindings" check, for the JSON files (card.yaml against the
     signed card needs a YAML parser: that comparison is the build's, and the page says so). */
  async function checkBindings(statement, files) {
    var predicate = statement.predicate;
    var weights = ofKind(statement, "weights")[0];
    var packs = {};
    ofKind(statement, "pack").forEach(function (s) { packs[s.name] = s.digest.sha256; });
    var runOf = {};
    for (var i = 0; i < predicate.runs.length; i++) {
      var entry = predicate.runs[i];
      // one run per pack, under runs/<pack id>/ (receipts/verify.py _run_name_problem): pages key runs by pack id
      var packId = String((entry.pack || {}).id), folder = "runs/" + packId;
      if (Object.prototype.hasOwnProperty.call(runOf, packId)) {
        fail("bindings: two runs of pack " + packId + ": " + runOf[packId] + " and " + entry.results + " (one run per pack)");
      }
      runOf[packId] = entry.results;
      if (entry.results !== folder + "/results.json" || entry.examples !== folder + "/examples.jsonl") {
        fail("bindings: run " + entry.results + " (examples " + entry.examples + ") of pack " + packId +
          " is not named " + folder + "/results.json and " + folder + "/examples.jsonl");
      }
      if (!files[entry.results] || !files[entry.examples]) fail("bindings: run " + entry.results + " is not among the signed files");
      var results = strictJSON(utf8(files[entry.results]), entry.results);
      if ((await sha256(files[entry.examples])) !== ((results.examples || {}).sha256)) {
        fail("bindings: " + entry.examples + " is not the examples log " + entry.results + " names");
      }
      var pack = results.pack || {};
      if (canonicalJSON(pack) !== canonicalJSON(entry.pack) ||
          packs["pack:" + pack.id + "@" + pack.version] !== String(pack.digest).replace(/^sha256:/, "")) {
        fail("bindings: " + entry.results + ": pack identity differs from the signed pack subject");
      }
      var student = (results.models || {}).student || {};
      if (weights && student.digest && student.digest !== "sha256:" + weights.digest.sha256) {
        fail("bindings: " + entry.results + ": the evaluated student is not the signed weights");
      }
      checkHeadline(entry, results, files[entry.examples]);
    }
    if (weights) {
      var manifestSubject = ofKind(statement, "weights-manifest")[0];
      if (!manifestSubject || !files[manifestSubject.name]) fail("bindings: no weights manifest");
      var manifest = strictJSON(utf8(files[manifestSubject.name]), manifestSubject.name);
      var root = await manifestRoot(manifest);
      if (manifest.root !== "sha256:" + root || root !== weights.digest.sha256) {
        fail("bindings: the weights manifest does not add up to the signed weights digest");
      }
    }
    await checkPublishedPacks(statement, files, packs);
  }

  /* The model_signing files rule (receipts/digests.py): per-file digests in path-component order, hashed. */
  async function manifestRoot(manifest) {
    var paths = Object.keys(manifest.files || {}).sort(function (a, b) {
      var x = a.split("/"), y = b.split("/");
      for (var k = 0; k < Math.min(x.length, y.length); k++) { if (x[k] !== y[k]) return x[k] < y[k] ? -1 : 1; }
      return x.length - y.length;
    });
    var raw = concat(paths.map(function (p) {
      var h = String(manifest.files[p]).replace(/^sha256:/, "");
      return new Uint8Array((h.match(/../g) || []).map(function (b) { return parseInt(b, 16); }));
    }));
    return sha256(raw);
  }

  /* A published pack (receipts/packfiles.py): its manifest adds up to the signed pack digest, and every
   * published file is in the manifest with the digest it was fetched with. */
  async function checkPublishedPacks(statement, files, packs) {
    var published = {};
    ofKind(statement, "pack-file").forEach(function (s) {
      var ref = String((s.annotations || {}).pack), parts = String(s.name).split("/");
      if (!Object.prototype.hasOwnProperty.call(packs, ref) || parts[0] !== "packs" || parts.length < 3 || ref.indexOf("pack:" + parts[1] + "@") !== 0) {
        fail("bindings: " + s.name + ": published for a pack the receipt does not bind");
      }
      (published[ref] = published[ref] || {})[parts.slice(2).join("/")] = s.digest.sha256;
    });
    var manifested = {};
    for (var subject of ofKind(statement, "pack-manifest")) {
      var ref = String((subject.annotations || {}).pack), id = ref.replace(/^pack:/, "").split("@")[0];
      if (!Object.prototype.hasOwnProperty.call(packs, ref) || subject.name !== "packs/" + id + ".manifest.json" || manifested[ref]) {
        fail("bindings: " + subject.name + ": not the one manifest of a pack the receipt binds");
      }
      manifested[ref] = true;
      var manifest = strictJSON(utf8(files[subject.name]), subject.name);
      var root = await manifestRoot(manifest);
      if (manifest.root !== "sha256:" + root || root !== packs[ref]) {
        fail("bindings: published pack " + id + ": its manifest does not add up to the signed pack digest");
      }
      // The licence in the published pack.yaml is held to the licence table at build (receipts/packfiles.py
      // _licence_problem): this page has no YAML parser nor the table, but a pack without pack.yaml is refused.
      if (!Object.prototype.hasOwnProperty.call(published[ref] || {}, "pack.yaml")) {
        fail("bindings: published pack " + id + ": published without its pack.yaml, so its licence cannot be checked");
      }
      Object.keys(published[ref] || {}).forEach(function (path) {
        if (String((manifest.files || {})[path]) !== "sha256:" + published[ref][path]) {
          fail("bindings: published pack " + id + ": " + path + " differs from the pack manifest");
        }
      });
    }
    Object.keys(published).forEach(function (ref) {
      if (!manifested[ref]) fail("bindings: pack files published without a pack manifest (" + ref + ")");
    });
  }

  /* --- the signed figures: generator/figures.py's rule, in JavaScript (keep the two identical) --- */

  var NOT_AVAILABLE = "n/a";
  var ROLE_WORDS = { teacher: "teacher", base: "base model", student: "student", sft: "SFT baseline" };
  var ROLE_ORDER = ["teacher", "base", "student", "sft"];

  /* 3 decimals, half away from zero on the exact binary value (toFixed's rule below 1e21; every double past
     that is an integer, printed whole); no sign on zero; anything but a finite number is "n/a". */
  function figureNumber(value, places) {
    places = places === undefined ? 3 : places;
    if (typeof value !== "number" || !isFinite(value)) return NOT_AVAILABLE;
    var text = Math.abs(value) < 1e21 ? value.toFixed(places) :
      BigInt(value).toString() + (places ? "." + "0".repeat(places) : "");
    return /^-[0.]*$/.test(text) ? text.slice(1) : text;
  }

  function figureText(value) { return typeof value === "string" ? value : NOT_AVAILABLE; }

  function record(value) { return value && typeof value === "object" && !Array.isArray(value) ? value : {}; }

  function roleLabel(role) {
    var at = role.indexOf("@"), kind = at < 0 ? role : role.slice(0, at);
    var words = Object.prototype.hasOwnProperty.call(ROLE_WORDS, kind) ? ROLE_WORDS[kind] : kind;
    return at < 0 ? words : words + " (" + role.slice(at + 1) + ")";
  }

  function roleOrder(a, b) {
    var x = ROLE_ORDER.indexOf(a), y = ROLE_ORDER.indexOf(b);
    x = x < 0 ? ROLE_ORDER.length : x; y = y < 0 ? ROLE_ORDER.length : y;
    return x !== y ? x - y : (a < b ? -1 : a > b ? 1 : 0);
  }

  /* The headline figures of a verified predicate: values (key -> string, as generator/figures.figures),
     labels (key -> words) and the same figures grouped for display. */
  function figures(predicate, read) {
    var model = record(predicate.model), out = { values: new Map(), labels: new Map(), runs: [] };
    function put(key, label, value) { out.values.set(key, value); out.labels.set(key, label); return value; }
    out.name = put("model.name", "model name", figureText(model.name));
    out.version = put("model.version", "model version", figureText(model.version));
    out.publisher = put("model.publisher", "publisher", figureText(model.publisher));
    out.gate = put("gate", "gate verdict", figureText(record(predicate.gate).verdict).replace(/_/g, " "));
    (Array.isArray(predicate.runs) ? predicate.runs : []).forEach(function (entry) {
      var summary = record(record(entry).summary), scores = record(summary.scores);
      var pack = figureText(record(record(entry).pack).id), key = "runs." + pack;
      var run = { pack: pack, scores: [] };
      run.metric = put(key + ".primary_metric", pack + ": primary metric", figureText(summary.primary_metric));
      Object.keys(scores).sort(roleOrder).forEach(function (role) {
        var label = pack + ": " + roleLabel(role) + " score";
        run.scores.push([roleLabel(role), put(key + ".scores." + role, label, figureNumber(scores[role]))]);
      });
      run.retention = put(key + ".retention", pack + ": student retention", figureNumber(summary.retention));
      out.runs.push(run);
    });
    if (read) evidenceFigures(predicate, read, put);
    return out;
  }

  /* generator/figures.py _evidence: the figures of the signed results and footprint files, each only where
     the signed value is a number. read(name) gives a signed file's JSON object, or {}. */
  function evidenceFigures(predicate, read, put) {
    function some(key, label, value, places) {
      var text = figureNumber(value, places);
      if (text !== NOT_AVAILABLE) put(key, label, text);
    }
    function ci(value) { return Array.isArray(value) && value.length === 2 ? value : [null, null]; }
    (Array.isArray(predicate.runs) ? predicate.runs : []).forEach(function (entry) {
      var pack = figureText(record(record(entry).pack).id), key = "runs." + pack;
      var results = read(record(entry).results), primary = results.primary_metric;
      var every = record(record(results.metrics).all);  // an own member only, as Python's dict.get
      var metric = typeof primary === "string" && Object.prototype.hasOwnProperty.call(every, primary) ?
        record(every[primary]) : {};
      var kept = record(record(metric.retention).student), bounds = ci(kept.ci95);
      some(key + ".retention.low", pack + ": student retention, 95% CI low", bounds[0]);
      some(key + ".retention.high", pack + ": student retention, 95% CI high", bounds[1]);
      var gain = record(record(metric.differences)["student-sft"]);
      some(key + ".vs_sft", pack + ": student minus SFT baseline", gain.value);
      bounds = ci(gain.ci95);
      some(key + ".vs_sft.low", pack + ": student minus SFT baseline, 95% CI low", bounds[0]);
      some(key + ".vs_sft.high", pack + ": student minus SFT baseline, 95% CI high", bounds[1]);
    });
    (Array.isArray(predicate.footprints) ? predicate.footprints : []).forEach(function (entry, i) {
      var doc = read(record(entry).file), key = "footprints." + i;
      (Array.isArray(doc.points) ? doc.points : []).forEach(function (point) {
        point = record(point);
        if (point.status !== "ok" || typeof point.id !== "string") return;
        var at = key + "." + point.id, metrics = record(point.metrics), words = "footprint " + i + " " + point.id;
        var rss = record(point.memory).peak_rss_bytes;
        some(at + ".peak_rss_gb", words + ": peak RSS (GB)", figureNumber(rss) !== NOT_AVAILABLE ? rss / 1e9 : null, 2);
        some(at + ".decode_tps", words + ": decode tok/s p50", record(metrics.decode_tps).p50, 1);
        some(at + ".ttft_p50", words + ": TTFT p50 (s)", record(metrics.ttft_s).p50);
        some(at + ".ttft_p95", words + ": TTFT p95 (s)", record(metrics.ttft_s).p95);
      });
      var price = record(record(doc.settings).price);
      if (figureNumber(price.per_hour) !== NOT_AVAILABLE) {
        some(key + ".cost_per_1k", "footprint " + i + ": cost per 1k calls", record(doc.summary).cost_per_1k_calls, 4);
      }
    });
  }

  /* A reader of signed files for figures(): name -> its JSON object ({} if missing or not an object). */
  function jsonReader(files, parse) {
    return function (name) {
      if (typeof name !== "string" || !Object.prototype.hasOwnProperty.call(files, name)) return {};
      try { return record(parse(files[name])); } catch (e) { return {}; }
    };
  }

  function node(tag, className, text) {
    var el = document.createElement(tag);
    if (className) el.className = className;
    if (text !== undefined) el.textContent = text;
    return el;
  }

  /* Where the page's own marked figures differ from the signed ones (what `receipts verify SITE` checks). */
  function differences(signed) {
    var seen = new Set(), out = [];
    document.querySelectorAll("[data-rc-figure]").forEach(function (el) {
      var key = el.getAttribute("data-rc-figure"), shown = el.textContent.trim();
      seen.add(key);
      if (!signed.values.has(key)) out.push("“" + shown + "” is marked as a figure the receipt does not hold");
      else if (shown !== signed.values.get(key)) {
        out.push(signed.labels.get(key) + " reads " + shown + " on this page; the receipt signs " +
          signed.values.get(key));
      }
    });
    signed.values.forEach(function (value, key) {
      if (!seen.has(key)) out.push(signed.labels.get(key) + " (signed " + value + ") is not on the page");
    });
    return out;
  }

  /* The signed figures, compact: the label above the box prints them, so here they sit folded under one
     line that says whether the page's own text is the signed one; a difference opens it with the list. */
  function signedBox(predicate, files) {
    var read = jsonReader(files || {}, function (bytes) { return strictJSON(utf8(bytes), "a signed file"); });
    var signed = figures(predicate, read), changed = differences(signed);
    var box = node("details", "rc-signed");
    box.setAttribute("aria-label", "Signed figures");
    var title = changed.length ? "This page’s own text differs from its receipt in " + changed.length +
      " place(s); the signed figures:" : "All " + signed.values.size + " figures on this page are the signed ones";
    box.appendChild(node("summary", "rc-signed-title", title));
    if (changed.length) {
      box.open = true;
      var warn = node("ul", "rc-signed-warning");
      changed.slice(0, 6).forEach(function (line) { warn.appendChild(node("li", "", line)); });
      if (changed.length > 6) warn.appendChild(node("li", "", "and " + (changed.length - 6) + " more"));
      box.appendChild(warn);
    }
    var facts = node("dl", "rc-signed-facts");
    signed.values.forEach(function (value, key) {
      facts.appendChild(node("dt", "", signed.labels.get(key)));
      facts.appendChild(node("dd", "", value));
    });
    box.appendChild(facts);
    return box;
  }

  function clearSigned(box) { box.querySelectorAll(".rc-signed").forEach(function (el) { el.remove(); }); }

  async function run() {
    var box = document.querySelector(".rc-verify");
    if (!box) return;
    var status = box.querySelector(".rc-status");
    clearSigned(box);
    status.setAttribute("data-state", "pending");
    status.textContent = "Verifying in your browser…";
    var result;
    try {
      result = await verifyPage(box);
    } catch (e) {
      result = { state: "failed", text: "FAILED: " + (e instanceof Fail ? e.reason : "verification error: " + e) };
    }
    clearSigned(box);
    status.setAttribute("data-state", result.state);
    status.textContent = result.text;
    if (result.state === "verified") box.appendChild(signedBox(result.predicate, result.files));
  }

  /* figures(p, texts): texts (optional) maps a signed file's name to its JSON text, as the bundle holds it. */
  window.receiptsVerify = { derToRaw: derToRaw, run: run, figureNumber: figureNumber, figures: function (p, texts) {
    return Object.fromEntries(figures(p, texts ? jsonReader(texts, JSON.parse) : null).values);
  } };
  if (window.document$ && typeof window.document$.subscribe === "function") {
    window.document$.subscribe(function () { run(); });
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", run);
  } else {
    run();
  }
})();
