"""Hugging Face model card (README.md) from a verified receipt: Hub metadata plus a Markdown scorecard.

Mapping decisions (the Hub's own vocabulary is narrower than a receipt's):

- ``base_model`` is the card's ``lineage.base`` (the weights training or quantization started from), and
  only when it is a Hub repo id (``owner/name``, from ``base.name`` or an ``hf:``/``huggingface.co``
  ``base.source``); otherwise it is left out rather than guessed. Teachers are never ``base_model``:
  their weights are not in the student, and listing two would make the Hub infer a merge.
- ``base_model_relation`` (the Hub knows adapter, merge, quantized, finetune): ``distilled`` ->
  ``finetune`` (distillation trains the base's weights; the teachers are named in the body),
  ``finetuned`` -> ``finetune``, ``quantized`` -> ``quantized``, ``original`` -> none (no base_model).
- ``license``: an SPDX id the Hub lists maps to its lowercase id (``Apache-2.0`` -> ``apache-2.0``,
  ``GPL-3.0-only`` -> ``gpl-3.0``); ``NOASSERTION`` -> ``unknown``; anything else (``LicenseRef-*``,
  ``-or-later``, AND/OR expressions) -> ``other`` with a slug ``license_name`` and, when the card's
  licence URL is https, ``license_link``. The Hub's own ``gemma``/``llama*`` ids are not guessed from
  a publisher's ``LicenseRef``: that name says nothing about which version of the terms it means.
- ``model-index``: one result per run (task from the pack's task kind; dataset = pack id, split
  ``test``, revision = pack digest) with every metric of the ``student`` role on all items, and
  ``verified: false`` (on the Hub, verified means evaluated by Hugging Face). Other roles and
  quantized variants (``student@int8-dynamic``) appear in the body only: the index has one model.

Every card and results string is untrusted. The front matter holds only values that match narrow
patterns and is written by ``yaml.safe_dump``; body text is one line per field with HTML, Markdown
punctuation and table pipes escaped, and card URLs are shown as code spans, never as links.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import yaml

from receipts.digests import sha256_bytes
from receipts.errors import UsageError
from receipts.failure_modes import SignedPack, filled, verified_packs

if TYPE_CHECKING:
    from pydantic import BaseModel

    from receipts.formats import Card, Results
    from receipts.formats.card import LicenseTerms, TrainingData
    from receipts.formats.results import Divergence, Estimate, Metric, Retention
    from receipts.verify import VerifiedReceipt

__all__ = ["hub_license", "model_card"]

_RELATIONS = {"distilled": "finetune", "finetuned": "finetune", "quantized": "quantized"}
# The Hub's licence list (hub-docs repositories-licenses.md) restricted to ids that are SPDX ids lowercased.
_SPDX_ON_HUB = (
    "apache-2.0 mit afl-3.0 artistic-2.0 bsl-1.0 bsd-2-clause bsd-3-clause bsd-3-clause-clear cc0-1.0 "
    "cc-by-2.0 cc-by-2.5 cc-by-3.0 cc-by-4.0 cc-by-sa-3.0 cc-by-sa-4.0 cc-by-nc-2.0 cc-by-nc-3.0 "
    "cc-by-nc-4.0 cc-by-nd-4.0 cc-by-nc-nd-3.0 cc-by-nc-nd-4.0 cc-by-nc-sa-2.0 cc-by-nc-sa-3.0 "
    "cc-by-nc-sa-4.0 cdla-sharing-1.0 cdla-permissive-1.0 cdla-permissive-2.0 wtfpl ecl-2.0 epl-1.0 "
    "epl-2.0 etalab-2.0 eupl-1.1 eupl-1.2 agpl-3.0 gpl-2.0 gpl-3.0 lgpl-2.1 lgpl-3.0 isc lppl-1.3c ms-pl "
    "mpl-2.0 osl-3.0 postgresql ofl-1.1 ncsa unlicense zlib"
)
_HUB_SPDX = frozenset(_SPDX_ON_HUB.split())
_SPDX_ALIASES = {"c-uda-1.0": "c-uda", "odc-by-1.0": "odc-by", "odbl-1.0": "odbl", "pddl-1.0": "pddl"}
_TASKS = {
    "multiple_choice": ("multiple-choice", "Multiple choice (log-likelihood)"),
    "generate": ("text-generation", "Text generation"),
    "classify": ("text-classification", "Classification"),
    "extract": ("text-generation", "Field extraction"),
}
_METRIC_TYPES = {"acc": "accuracy"}
_HUB_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}")
_TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]")
# CommonMark backslash-escapes any ASCII punctuation; these are the ones that start syntax, links or
# autolinks ("https://", "www.", "a@b"), KaTeX ($$) or table cells (|).
_MD_SYNTAX = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$:@])")


def _hub_id(value: Any) -> str | None:
    """A Hub repo id taken from ``owner/name``, ``hf:owner/name`` or ``https://huggingface.co/owner/name``."""
    if not isinstance(value, str):
        return None
    for prefix in ("hf:", "https://huggingface.co/"):
        value = value.removeprefix(prefix)
    ok = _HUB_ID.fullmatch(value) and ".." not in value and "--" not in value
    return value if ok else None


def _dataset_id(dataset: TrainingData) -> str | None:
    """A Hub dataset id, only from a source that says so (``https://huggingface.co/datasets/…``)."""
    source = str(dataset.source)
    for prefix in ("https://huggingface.co/datasets/", "hf:datasets/"):
        if source.startswith(prefix):
            return _hub_id(source.removeprefix(prefix))
    return None


def _https(url: Any) -> bool:
    if not isinstance(url, str) or _INVISIBLE.search(url) or any(c in url for c in ' <>"`\\'):
        return False
    parts = urlsplit(url)
    return parts.scheme == "https" and bool(parts.hostname)


def hub_license(spdx: str, url: str | None = None) -> dict[str, str]:
    """The Hub's ``license`` (and ``license_name``/``license_link`` for ``other``) for an SPDX expression."""
    lowered = spdx.lower().removesuffix("-only")
    if lowered == "noassertion":
        return {"license": "unknown"}
    if lowered in _HUB_SPDX or lowered in _SPDX_ALIASES:
        return {"license": _SPDX_ALIASES.get(lowered, lowered)}
    slug = re.sub(r"[^a-z0-9.]+", "-", spdx.removeprefix("LicenseRef-").lower()).strip("-.")
    found = {"license": "other", "license_name": slug or "custom"}
    if _https(url):
        found["license_link"] = str(url)
    return found


def _metadata(v: VerifiedReceipt, receipt_url: str | None) -> dict[str, Any]:
    card, lineage = v.card, v.card.lineage
    meta: dict[str, Any] = hub_license(card.license.id, card.license.url)
    languages = [lang for lang in card.model.languages or [] if _TOKEN.fullmatch(str(lang))]
    if languages:
        meta["language"] = languages
    base = lineage.base
    base_id = _hub_id(base.name) or _hub_id(base.source)
    if lineage.relation in _RELATIONS and base_id:
        meta["base_model"] = base_id
        meta["base_model_relation"] = _RELATIONS[lineage.relation]
    datasets = sorted({d for d in map(_dataset_id, card.training_data) if d})
    if datasets:
        meta["datasets"] = datasets
    if str(base.architecture).endswith("ForCausalLM"):
        meta["pipeline_tag"] = "text-generation"
    kinds = {student.kind if (student := r.models.get("student")) else None for r in v.results}
    if kinds == {"hf"}:
        meta["library_name"] = "transformers"
    tags = [t for t in card.model.tags or [] if _TOKEN.fullmatch(str(t))] + ["receipts"]
    if lineage.relation == "distilled":
        tags.append("distillation")
    meta["tags"] = list(dict.fromkeys(tags))
    results = [r for r in (_index_entry(run, receipt_url) for run in v.results) if r]
    if results:
        meta["model-index"] = [{"name": card.model.name, "results": results}]
    return meta


def _index_entry(run: Results, receipt_url: str | None) -> dict[str, Any] | None:
    metrics = []
    for metric, scores in (run.metrics or {}).get("all", {}).items():
        student = scores.roles.get("student")
        if _TOKEN.fullmatch(metric) and student is not None and _is_number(student.value):
            name = f"{metric} (student, all items, 95% CI {_ci(student)})"
            type_ = _METRIC_TYPES.get(metric, metric)
            metrics.append({"type": type_, "value": student.value, "name": name, "verified": False})
    pack, task = run.pack, _TASKS.get(run.task) if run.task is not None else None
    if not metrics or task is None or not _TOKEN.fullmatch(pack.id):
        return None
    task_type, task_name = task
    entry: dict[str, Any] = {
        "task": {"type": task_type, "name": task_name},
        "dataset": {"name": pack.id, "type": pack.id, "split": "test", "revision": pack.digest},
        "metrics": metrics,
    }
    if receipt_url:
        entry["source"] = {"name": "Signed receipt (self-reported by the publisher)", "url": receipt_url}
    return entry


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: Any) -> str:
    """Untrusted text as inert Markdown on one line: no HTML, no link, no emphasis, no table break."""
    flat = " ".join(_INVISIBLE.sub(" ", str(value)).split())
    return _MD_SYNTAX.sub(r"\\\1", html.escape(flat, quote=False))


def _code(value: Any) -> str:
    """Untrusted text (a URL, an id) as a code span: shown, never followed."""
    flat = " ".join(_INVISIBLE.sub(" ", str(value)).split())
    fence = "`" * (max((len(r) for r in re.findall("`+", flat)), default=0) + 1)
    return f"{fence} {flat} {fence}"


def _num(value: Any, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if _is_number(value) else "n/a"


def _ci(estimate: Estimate) -> str:
    low, high = [*estimate.ci95, None, None][:2]
    return f"[{_num(low)}, {_num(high)}]"


def _bytes(value: Any) -> str:
    return f"{value / 2**20:,.0f} MiB" if _is_number(value) else "n/a"


def _table(header: str | list[str], rows: Iterable[list[str]]) -> str:
    """A GFM table of escaped cells; a ``str`` header is trusted text split at ``|``."""
    columns = header.split("|") if isinstance(header, str) else header
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in rows])


def _bullets(items: Iterable[Any]) -> str:
    return "\n".join(f"- {_text(item)}" for item in items) or "- none stated"


def _estimate(estimate: Estimate | None) -> str:
    if estimate is None:
        return "-"
    small = " (small n)" if estimate.small_n else ""
    return f"{_num(estimate.value)} {_ci(estimate)}, n={_num(estimate.n, 0)}{small}"


def _retention(entry: Retention | None) -> str:
    if entry is None:
        return "-"
    if entry.value is None:
        return f"n/a: {_text(entry.reason or 'not computed')}"
    return f"{_num(entry.value)} ({_num(entry.student_over_teacher)})"


def _by_role(scores: Metric, roles: list[str]) -> list[str]:
    return [_estimate(scores.roles.get(role)) for role in roles]


def _retention_by_role(scores: Metric, roles: list[str]) -> list[str]:
    return [_retention((scores.retention or {}).get(role)) for role in roles]


def _run(run: Results) -> list[str]:
    pack, slices = run.pack, run.metrics or {}
    order = {"student": 0, "sft": 2, "teacher": 3, "base": 4}
    roles = sorted(run.models, key=lambda r: (order.get(r, 1), r))
    learners = [r for r in roles if r not in ("teacher", "base")]
    blocks = [
        f"### {_text(pack.id)}@{_text(pack.version)}",
        f"Task {_text(run.task or 'not stated')}, pack digest {_code(pack.digest)}. "
        "Means over all items, with 95% paired-bootstrap intervals.",
    ]
    metrics = slices.get("all", {})
    if not metrics:
        return [*blocks, "This run carries no metrics."]
    blocks.append(
        _table(
            ["Metric", *map(_text, roles)],
            ([_text(m), *_by_role(e, roles)] for m, e in metrics.items()),
        )
    )
    rows = [[_text(m), *_retention_by_role(e, learners)] for m, e in metrics.items() if e.retention]
    if rows:
        blocks += ["Retention (S - B) / (T - B), S / T in parentheses:"]
        blocks += [_table(["Metric", *map(_text, learners)], rows)]
    fidelity = sorted((run.fidelity or {}).items(), key=lambda item: item[0])
    if fidelity:
        rows = [[_text(r), _num(f.agreement_rate), _kl(f.kl)] for r, f in fidelity]
        blocks.append(_table("Role|Agreement with teacher|KL(teacher, role)", rows))
    calibration = sorted((run.calibration or {}).items(), key=lambda item: item[0])
    if calibration:
        rows = [
            [_text(r), *map(_num, (c.ece_10_equal_mass, c.ece_15_equal_width, c.brier))]
            for r, c in calibration
        ]
        blocks.append(_table("Role|ECE (10 equal-mass bins)|ECE (15 equal-width bins)|Brier", rows))
    primary = run.primary_metric
    rows = [
        [_text(s), *_by_role(m[primary], roles)]
        for s, m in slices.items()
        if s != "all" and primary is not None and primary in m
    ]
    if rows:
        blocks += [f"{_text(primary)} per slice:", _table(["Slice", *map(_text, roles)], rows)]
    notes = [f"{d.id}: {d.message}" for d in run.diagnostics or []]
    return blocks + (["Diagnostics:", _bullets(notes)] if notes else [])


def _obj(value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else empty: the schemas leave these values untyped."""
    return value if isinstance(value, dict) else {}


def _kl(kl: Divergence | None) -> str:
    return f"{_num(kl.value)} ({_text(kl.level)})" if kl is not None else "n/a"


def _cost(v: VerifiedReceipt) -> list[str]:
    models = [(m.digest, role) for r in v.results for role, m in r.models.items()]
    roles = {str(digest): role for digest, role in models if digest}
    rows = []
    for fp in v.footprints:
        model, label = fp.model, fp.hardware.label
        who = roles.get(str(model.digest), model.spec)
        for point in fp.summary.by_quant.values():
            cells = [_text(x) for x in (who, label, point.quant, point.verdict)]
            speed = [_num(point.decode_tps_p50, 1), _num(point.e2e_p50_s, 3), _num(point.ttft_p50_s, 3)]
            rows.append([*cells, *speed, _bytes(point.peak_rss_bytes)])
    header = "Model|Hardware|Quant|Verdict|Decode tok/s (p50)|End-to-end s (p50)|TTFT s (p50)|Peak RSS"
    note = "Measured by `receipts bench`, signed in the receipt."
    return ["## Cost on hardware", note, _table(header, rows)] if rows else []


def _quantization(v: VerifiedReceipt) -> list[str]:
    rows = []
    for row in v.predicate.quantization or []:
        bench = _obj((row.benched or [{}])[0])
        for pack, evaluated in sorted(row.evaluated.items()):
            got = _obj(evaluated)
            cells = [_text(row.quant), _text(pack), _text(got.get("metric"))]
            scores = [
                _num(got.get("score")),
                _num(got.get("retention")),
                _num(bench.get("decode_tps_p50"), 1),
            ]
            rows.append([*cells, *scores, _bytes(bench.get("peak_rss_bytes"))])
    header = "Quantization|Pack|Metric|Student score|Retention|Decode tok/s (p50)|Peak RSS"
    return ["## Quantization survival", _table(header, rows)] if rows else []


def _license(terms: LicenseTerms) -> list[str]:
    allowed, limits = terms.permissions, terms.permissions.user_thresholds
    granted = {
        "commercial_use": allowed.commercial_use,
        "redistribution": allowed.redistribution,
        "derivatives": allowed.derivatives,
        "attribution_required": allowed.attribution_required,
    }
    facts = [f"{key.replace('_', ' ').capitalize()}: {'yes' if ok else 'no'}" for key, ok in granted.items()]
    facts += [f"Output use restriction: {r}" for r in allowed.output_use_restrictions]
    if limits is not None and limits.max_monthly_active_users is not None:
        facts.append(f"Other terms above {limits.max_monthly_active_users:,} monthly active users")
    facts += [f"User thresholds: {limits.notes}"] if limits is not None and limits.notes is not None else []
    facts += [f"Inherited from {t.from_}: {t.terms} Effect: {t.effect}" for t in terms.inherited_terms]
    named = _text(terms.id) + (f", {_text(terms.name)}" if terms.name is not None else "")
    where = f"Licence text: {_code(terms.url)}." if terms.url is not None else "No licence URL given."
    return ["## License", f"{named}. {where}", _bullets(facts)]


def _written(part: BaseModel) -> list[tuple[str, Any]]:
    """The properties a card object sets, in the signed statement's order (RFC 8785 sorts the keys)."""
    return sorted(((key, value) for key, value in part if value is not None), key=lambda item: item[0])


def _lineage(card: Card, meta: dict[str, Any]) -> list[str]:
    lineage, base = card.lineage, card.lineage.base
    if "base_model" in meta:
        hub = f"On the Hub: base_model {_code(meta['base_model'])}, relation {meta['base_model_relation']}."
    else:
        hub = "On the Hub: no base_model (the base is not named by a Hub repo id, or the model is original)."
    size = f"{base.parameters:,} parameters, context {base.context_length:,} tokens"
    source = "not stated" if base.source is None else base.source
    facts = [f"Base: {base.name} ({base.architecture}, {size}, license {base.license}); source: {source}"]
    for t in lineage.teachers or []:
        restricts = {True: "yes", False: "no", None: "not stated"}[t.terms_restrict_distillation]
        ident = t.weights_digest or t.api_identifier
        facts.append(
            f"Teacher: {t.name}, {ident}, license {t.license}; terms restrict distillation: {restricts}"
        )
    for key, part in (("distillation", lineage.distillation), ("quantization", lineage.quantization)):
        if part is not None:
            facts.append(f"{key.capitalize()}: " + "; ".join(f"{k} {x}" for k, x in _written(part)))
    data = [
        f"{d.name} ({'stage not stated' if d.stage is None else d.stage}, license {d.license}); "
        f"source: {d.source}. {'' if d.description is None else d.description}"
        for d in card.training_data
    ]
    relation = f"Relation: {_text(lineage.relation)}. {hub}"
    return ["## Lineage", relation, _bullets(facts), "### Training data", _bullets(data)]


def _uses(card: Card, packs: Mapping[str, SignedPack]) -> list[str]:
    boundary, use = card.task_boundary, card.intended_use
    lists = [
        ("Claimed good at:", boundary.good_at),
        ("Not claimed:", boundary.not_claiming),
        ("Primary uses:", use.primary_uses),
        ("Primary users:", use.primary_users),
        ("Out of scope:", use.out_of_scope),
    ]
    modes = [
        f"{f.id} (severity {f.severity}): {filled(f.description, packs)} Trigger: {filled(f.trigger, packs)} "
        f"Mitigation: {filled(f.mitigation, packs)} Items: {', '.join(f.pack_items) or 'none'}"
        for f in card.failure_modes
    ]
    blocks = ["## Intended use"]
    for title, items in lists:
        blocks += [title, _bullets(items)]
    return [*blocks, "## Failure modes", _bullets(modes)]


_HEADER = """# {name}

Version {version}, published by {publisher}.

{description}

> **Self-reported numbers.** Every evaluation result in this card and in its `model-index` metadata
> is self-reported by the publisher and signed with a receipt. Hugging Face has not verified them
> (`verified: false`). Check the signature, and the weights against it, yourself: see How to verify.

## Signed evidence

- Receipt {bundle}, issued {issued}; receipt.json sha256 {envelope}
- Signed by key(s) {keys}
- Exported after it verified against the trust root with sha256 {root}{extra}

## How to verify

Get the publisher's trust root (trust.json) out of band, never from this page, and the receipt
bundle {where}. Install the receipts verifier from its source repository (`pip install .` in a
checkout; the PyPI package that happens to be named `receipts` is an unrelated project). Then, in a
folder holding both and this repository's weights:

```sh
receipts verify {bundle_dir}/ --trust-root trust.json \\
  --trust-root-sha256 {root_hex} --weights <weights dir>
```

## Scorecard

Release gate: **{verdict}**{reason}"""


def model_card(v: VerifiedReceipt, *, receipt_url: str | None = None) -> str:
    """The README.md text: YAML front matter the Hub indexes, then the card and its signed scorecard.

    Deterministic: the same receipt and ``receipt_url`` give the same bytes.

    Raises:
        UsageError: ``receipt_url`` is not an http(s) URL.
    """
    if receipt_url is not None:
        parts = urlsplit(receipt_url)
        if parts.scheme not in ("http", "https") or not parts.hostname or _INVISIBLE.search(receipt_url):
            raise UsageError("--receipt-url must be an http(s) URL", hint="e.g. https://example.org/m@1.0.0/")
        receipt_url = quote(receipt_url, safe="/:?#[]@!$&'*+,;=%~-._")
    predicate, model, gate = v.predicate, v.card.model, v.predicate.gate
    meta = _metadata(v, receipt_url)
    extra = ""
    if predicate.weights is not None:
        extra += f"\n- Weights: model_signing v1.0 folder digest {_code(predicate.weights.root)}"
    if receipt_url:
        extra += f"\n- Published receipt: [{_text(v.bundle_name)}]({receipt_url})"
    header = _HEADER.format(
        name=_text(model.name),
        version=_text(model.version),
        publisher=_text(model.publisher),
        description=_text(model.description),
        bundle=_code(v.bundle_name),
        issued=_code(predicate.issuedAt),
        envelope=_code(sha256_bytes(v.envelope)),
        keys=", ".join(_code(k) for k in predicate.signer.keyids),
        root=_code(v.trust_root_sha256),
        extra=extra,
        where="from the link above" if receipt_url else "from the publisher",
        bundle_dir=v.bundle_name,  # name@version: the statement schema allows no backtick or space in either
        root_hex=v.trust_root_sha256,
        verdict=_text(gate.verdict),
        reason=f". {_text(gate.reason)}" if gate.reason else "",
    )
    blocks = [header, *(block for run in v.results for block in _run(run))]
    blocks += (
        _quantization(v)
        + _cost(v)
        + _license(v.card.license)
        + _uses(v.card, verified_packs(v))
        + _lineage(v.card, meta)
    )
    caveats = [*(v.card.caveats or []), *(v.card.ethical_considerations or [])]
    blocks += ["## Caveats and ethical considerations", _bullets(caveats)] if caveats else []
    front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=100)
    return f"---\n{front}---\n\n" + "\n\n".join(blocks) + "\n"
