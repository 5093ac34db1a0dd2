"""Render a folder of signed receipts into catalog pages (engine-neutral; no mkdocs import).

Every receipt is verified against the pinned trust root first; one that fails stops the render with
the receipt's path and the failed check (a catalog never shows numbers its signatures do not hold).
The numbers on a page come from the *verified* statement bytes and the bound subject files.

Untrusted text (everything from a card, a pack or a model) is HTML-escaped by Jinja's autoescape and
placed only inside raw HTML blocks, where Markdown does not run: it can neither become live HTML nor
Markdown (no links, no emphasis). URLs from cards are shown as code, never as links.

Output (paths relative to the docs folder):
  models/<name>/<version>/index.md          the card page
  models/<name>/<version>/<name>@<version>/ the receipt bundle, byte for byte (verify.js fetches it)
  models/<name>/<version>/*.svg             charts: retention per slice, reliability diagram, cost,
                                            latency distribution per footprint
  models/<name>/<version>/examples/<pack>/  the per-example viewer of each run (index.md, rows-<k>.json)
  models/<name>/<version>/README.md.txt     downloads made from the verified receipt, outside its bundle
    and .../<name>-<version>.cdx.json       (generator/exports.py): Hugging Face card, CycloneDX ML-BOM
  models/index.md, catalog/<k>/index.md     the catalog table (generator/listings.py: split into pages)
  tags/index.md, tags/<tag>/[<k>/]index.md   tag listings (same table)
  index.md                                  the home: the catalog at a glance (generator/home.py); a docs
                                            folder's own index.md is kept instead
  catalog/index.json                        the static index the buyer query and compare read
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import json
import os
import shutil
from collections.abc import Mapping, Sequence, Set
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
import markupsafe
from pydantic import BaseModel

from generator import charts
from generator.exports import cached_exports, receipt_url
from generator.failure_modes import failure_mode_views
from generator.figures import figures, role_label, roles
from generator.home import HOME, HOME_MARK, home_page
from generator.index import quant_rows
from generator.judged import NOT_VALIDATED, judged_card
from generator.label import label_view
from generator.latency import latency_rows
from generator.licence import index_fields, licence_view
from generator.listings import is_tag_slug, listings, search_summary, table_row
from generator.quantization import quantization_rows, quantization_sentences
from generator.scorecard import FLOOR_SENTENCE, pack_cards, raw_sections
from generator.similarity import similarity_section
from generator.viewer import MAX_TEXT, ViewerPage, failure_mode_links, viewer_pages
from generator.viewer import PAGE_ROWS as VIEWER_ROWS
from receipts.binding import same_weights
from receipts.digests import sha256_bytes
from receipts.errors import VerificationError
from receipts.gate import describe
from receipts.output import check_folder, refused
from receipts.resources import site_dir
from receipts.trust import TrustRoot, trust_root_from_bytes
from receipts.verify import Report, VerifiedReceipt, find_receipts, verify_receipt

if TYPE_CHECKING:
    from generator.reproductions import Shown
    from receipts.formats import Card, Footprint, Results
    from receipts.formats.card import Teacher
    from receipts.formats.results import Estimate, ModelIdentity
    from receipts.formats.statement import RunEntry

__all__ = ["RenderResult", "collect", "page_dir", "render"]

INDEX_FORMAT = "receipts.catalog-index/v1"


def page_dir(verified: VerifiedReceipt) -> str:
    """Where a receipt's card page goes, relative to the docs folder: ``models/<name>/<version>``."""
    return f"models/{verified.name}/{verified.version}"


@dataclass
class RenderResult:
    """What a render wrote (paths relative to the docs folder)."""

    entries: list[VerifiedReceipt]
    pages: list[str]
    files: dict[str, bytes]
    search: dict[str, str] = dataclasses.field(default_factory=dict)
    """Card page path -> the summary the site search indexes for it (`generator.listings.search_summary`)."""


@functools.cache
def _root_from(data: bytes) -> TrustRoot:
    return trust_root_from_bytes(data)


def _verify_one(
    receipt: Path, root: TrustRoot | bytes, rederive: bool = True
) -> VerifiedReceipt | tuple[Report, str]:
    """Verify one receipt (maybe in a worker process): what verified, or (its report, the failure text)."""
    if isinstance(root, bytes):  # a worker process: trust roots hold key objects that do not pickle
        root = _root_from(root)
    try:
        return verify_receipt(receipt, root, rederive=rederive)
    except VerificationError as exc:
        return exc.report or Report(receipt=str(receipt)), exc.summary()


def collect(
    receipts_dir: Path,
    root: TrustRoot,
    *,
    root_bytes: bytes | None = None,
    workers: int | None = None,
    rederive: bool = True,
) -> list[VerifiedReceipt]:
    """Verify every receipt under ``receipts_dir`` and keep the bytes each verification read.

    Pages, bundle copies and exports are made from those bytes only (the envelope, and each signed
    subject read without following links); nothing is read from the folder again, so a file changed or
    added after its check can never reach the catalog. With ``root_bytes`` (the trust root file) and many
    receipts, they are verified in parallel, one process per core. Every signed number is re-derived from
    the signed evidence unless ``rederive`` is false (``--no-rederive``).

    Raises:
        VerificationError: a receipt fails verification (the message names it and the check).
        InputError: the folder holds no receipt.
    """
    receipts = find_receipts(receipts_dir)
    workers = workers or min(os.cpu_count() or 1, 8)
    if root_bytes is not None and workers > 1 and len(receipts) >= 64:
        if sha256_bytes(root_bytes) != root.sha256:
            raise VerificationError("the trust root bytes given do not match the loaded trust root")
        with ProcessPoolExecutor(workers) as pool:
            roots, flags = [root_bytes] * len(receipts), [rederive] * len(receipts)
            outcomes = list(pool.map(_verify_one, receipts, roots, flags, chunksize=32))
    else:
        outcomes = [_verify_one(r, root, rederive) for r in receipts]
    entries = []
    for receipt, outcome in zip(receipts, outcomes, strict=True):
        if isinstance(outcome, tuple):
            report, failure = outcome
            failed = next((c.name for c in report.checks if c.status == "fail"), "")
            raise VerificationError(
                f"refusing to publish an unverified receipt: {failure.removeprefix(f'{receipt}: ')}",
                check=failed,
                file=receipt,
                hint="fix or remove the receipt; the catalog only shows receipts that verify",
            )
        entries.append(outcome)
    seen: dict[tuple[str, str], Path] = {}
    for entry in entries:
        key = (entry.name, entry.version)
        if key in seen:
            raise VerificationError(
                f"two receipts claim {entry.name}@{entry.version}",
                file=entry.bundle,
                hint=f"the other is {seen[key]}; publish one receipt per model version",
            )
        seen[key] = entry.bundle
    return sorted(entries, key=lambda e: (e.name, _version_key(e.version)))


def _version_key(version: str) -> tuple[Any, ...]:
    return tuple((0, int(p)) if p.isdigit() else (1, p) for p in version.replace("-", ".").split("."))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(site_dir() / "templates")),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["num"] = _num
    env.filters["pct"] = _pct
    env.filters["gb"] = lambda v: "n/a" if v is None else f"{v / 1e9:.2f} GB"
    env.filters["label"] = _label
    env.filters["role"] = role_label
    env.filters["gate_words"] = _gate_words
    env.filters["ci_pair"] = _ci_pair
    env.filters["inert"] = _inert
    env.filters["cell"] = _cell
    env.filters["sortkey"] = lambda v: v if isinstance(v, int | float) and not isinstance(v, bool) else ""
    env.tests["tag_slug"] = is_tag_slug
    return env


def _label(key: Any) -> str:
    return str(key).replace("_", " ")


def _ci_pair(value: Any) -> tuple[float, float] | None:
    """A signed record's ``ci95`` as (low, high) when it is a list of two numbers, else None.

    Gate records are free-form in the statement schema (and a page may be built ``--no-rederive``), so the
    template never indexes one: an object, a string or a list of three there is no CI, and shows "—".
    """
    if not isinstance(value, list | tuple) or len(value) != 2:
        return None
    low, high = value
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
    return (low, high) if numbers else None


def _gate_words(rule: Any) -> str:
    """A signed gate record's outcome in plain words, without its pack (the table has a column for it)."""
    if not isinstance(rule, Mapping):
        return ""
    words = describe({k: v for k, v in rule.items() if k != "pack"})
    name = str(rule.get("rule"))
    return words.removeprefix(f"{name} ")


def _inert(value: Any) -> markupsafe.Markup:
    """Untrusted data as inert HTML: strings escaped, mappings and models as ``<dl>``, lists as ``<ul>``.

    Strings that look like URLs or URIs (``http://``, ``javascript:``, ...) become ``<code>``, never links.
    A Python function rather than a recursive Jinja macro: the same output, faster on large catalogs.
    Every piece of data goes through ``escape`` (or is this function's own ``Markup``) before it is joined.
    """
    esc, html = markupsafe.escape, markupsafe.Markup
    if isinstance(value, Mapping | BaseModel):
        pairs = value.items() if isinstance(value, Mapping) else _signed_items(value)
        items = "".join(f"<dt>{esc(_label(k))}</dt><dd>{_inert(v)}</dd>" for k, v in pairs)
        return html(f'<dl class="rc-dl">{items}</dl>')
    if isinstance(value, str):
        uri = value.startswith(("http://", "https://")) or (":" in value[:12] and " " not in value)
        return html(f"<code>{esc(value)}</code>") if uri else esc(value)
    if isinstance(value, Sequence | Set):
        if not value:
            return html("<em>none</em>")
        items = "".join(f"<li>{_inert(v)}</li>" for v in value)
        return html(f"<ul>{items}</ul>")
    if value is None:
        return html("<em>not stated</em>")
    return esc(_num(value))


def _cell(value: Any) -> markupsafe.Markup:
    """Untrusted text for one line of a raw HTML block: escaped, and its line breaks as character references.

    A blank line would end the HTML block and let Markdown run on the rest of the text (a link, an image);
    ``&#10;`` is a line break the browser shows (``white-space: pre-wrap``) that Markdown never sees.
    """
    text = str(markupsafe.escape("" if value is None else value))
    # the text is escaped above: only the character references added here are markup
    return markupsafe.Markup(text.replace("\r", "&#13;").replace("\n", "&#10;"))  # noqa: S704


def _signed_items(model: BaseModel) -> list[tuple[str, Any]]:
    """A typed model's members as its signed JSON object holds them: ``(key, value)``, keys sorted.

    Only the members the document has (an omitted one is not shown as absent), under their JSON names
    (``from``, not ``from_``), unknown ones of an open object included. A typed model keeps no key order;
    the documents it reads are written with sorted keys (the statement in RFC 8785 form, results.json with
    ``sort_keys``), so sorted is the order signed. A member typed as a number holds a float even where the
    JSON had an integer; a whole one is given back as the integer RFC 8785 writes for it (``2``, not
    ``2.0``): so the card's numbers read as signed. (Results members shown here are untyped, kept as read.)
    """
    items = []
    for name, field in type(model).model_fields.items():
        if name in model.model_fields_set:
            value = getattr(model, name)
            items.append((field.alias or name, value if field.annotation is Any else _whole(value)))
    items += (model.model_extra or {}).items()
    return sorted(items, key=lambda item: item[0])


def _whole(value: Any) -> Any:
    # JSON numbers below 1e21 with no fraction are written as integers by RFC 8785 (as by JavaScript)
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) < 1e21 else value


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _pct(value: Any) -> str:
    return "n/a" if not isinstance(value, int | float) else f"{value:.0%}"


@dataclass(frozen=True)
class SignedRun:
    """One signed run: its predicate entry and its verified results."""

    entry: RunEntry
    results: Results


def _runs(entry: VerifiedReceipt) -> list[SignedRun]:
    """Each signed run, in the predicate's order."""
    return [SignedRun(run, results) for run, results in zip(entry.predicate.runs, entry.results, strict=True)]


_ROLE_ORDER = {"teacher": 0, "base": 1, "student": 2, "sft": 3}


def evaluated_models(card: Card, runs: Sequence[SignedRun]) -> list[dict[str, str]]:
    """Who was evaluated, per role, from the signed runs (not the card text), and how the card is bound.

    ``verify`` already refused any contradiction (receipts.binding), so what remains to say is whether the
    card states the role (and so is checked against it) or leaves it unstated.
    """
    lineage = card.lineage
    rows: dict[tuple[str, str], dict[str, str]] = {}
    for run in runs:
        for role, model in run.results.models.items():
            identity = model.digest or model.endpoint or "no identity recorded"
            if role == "teacher":
                bound = _teacher_binding(lineage.teachers or [], model)
            elif role == "base":
                stated = lineage.base.weights_digest
                bound = "the card's base weights" if stated else "the card states no base digest"
            elif role.startswith("student"):
                bound = "the signed weights" if model.digest else "no weights signed"
            else:
                bound = "baseline (not named by the card)"
            row = rows.setdefault(
                (role, identity), {"role": role, "identity": identity, "bound": bound, "packs": ""}
            )
            pack = run.entry.pack.id
            row["packs"] = ", ".join(p for p in (row["packs"], pack) if p)
            spec = model.spec
            kind, _, where = spec.partition(":")
            # the signed spec names a path on the publisher's machine; its last part says what was run
            row["spec"] = f"{kind}:…/{where.rstrip('/').rsplit('/', 1)[-1]}" if "/" in where else spec
    order = sorted(rows.values(), key=lambda r: (_ROLE_ORDER.get(r["role"].partition("@")[0], 9), r["role"]))
    return order


def _teacher_binding(claims: Sequence[Teacher], model: ModelIdentity) -> str:
    if not claims:
        return "reference model (the card names no teacher)"
    for claim in claims:
        stated = claim.weights_digest
        if stated and stated != model.digest and same_weights(stated, model.digest):
            return f"named by the card as {stated} (the file's sha256; shown here as its one-file root)"
    return "named by the card"


def index_row(entry: VerifiedReceipt) -> dict[str, Any]:
    """One model in the static catalog index (what the buyer query and compare read)."""
    card, predicate = entry.card, entry.predicate
    evals = {}
    for run in _runs(entry):
        results, summary = run.results, run.entry.summary
        metrics = (results.metrics or {}).get("all", {})
        student = {name: _student_value(metric.roles) for name, metric in metrics.items()}
        evals[run.entry.pack.id] = {
            "primary_metric": summary.get("primary_metric"),
            "scores": summary.get("scores", {}),
            "retention": summary.get("retention"),
            "student_metrics": student,
            "task": results.task,
            "extraction": _student_extraction(results),
        }
    return {
        "name": entry.name,
        "version": entry.version,
        "publisher": predicate.model.publisher,
        "description": card.model.description,
        "tags": card.model.tags or [],
        "good_at": card.task_boundary.good_at,
        "license": card.license.id,
        "commercial_use": card.license.permissions.commercial_use,
        "redistribution": card.license.permissions.redistribution,
        **index_fields(entry),
        "hardware_profiles": [dict(_signed_items(profile)) for profile in card.hardware_profiles],
        "evals": evals,
        "cost": _cost_points(entry.footprints),
        "quantization": [
            row.model_dump(mode="json", exclude_unset=True) for row in predicate.quantization or []
        ],
        "gate": predicate.gate.verdict,
        "quants": quant_rows(entry),
        "issued_at": predicate.issuedAt,
        "page": f"{page_dir(entry)}/",
        "receipt": f"{page_dir(entry)}/{entry.bundle_name}/receipt.json",
        "receipt_sha256": sha256_bytes(entry.envelope),
    }


def _student_extraction(results: Results) -> dict[str, Any] | None:
    """The student's micro-averaged extraction counts and scores, as the index's ``extraction``."""
    student = (results.extraction or {}).get("student")
    return None if student is None else student.micro.model_dump(mode="json")


def _student_value(roles: Mapping[str, Estimate]) -> float | None:
    estimate = roles.get("student")
    return None if estimate is None else estimate.value


def _cost_points(footprints: Sequence[Footprint]) -> list[dict[str, Any]]:
    """The index's ``cost`` rows: each footprint's headline points (``summary.by_quant``) with its hardware.

    Each row holds the members its point has, as signed.
    """
    cost = []
    for footprint in footprints:
        where = {"hw_class": footprint.hardware.hw_class, "hardware": footprint.hardware.label}
        for point in footprint.summary.by_quant.values():
            cost.append({**where, **point.model_dump(mode="json", exclude_unset=True)})
    return cost


VERIFY_JS = "assets/receipts/verify.js"
CATALOG_JS = "assets/receipts/catalog.js"
CATALOG_TABLE_JS = "assets/receipts/catalog-table.js"
VIEWER_JS = "assets/receipts/viewer.js"
STYLE_CSS = "assets/receipts/receipts.css"


def render(
    entries: Sequence[VerifiedReceipt],
    root: TrustRoot,
    root_bytes: bytes,
    *,
    site_url: str | None = None,
    reproductions: Mapping[str, Sequence[Shown]] | None = None,
    workers: int | None = None,
) -> RenderResult:
    """Pages, bundle copies, exports, charts, verify.js and the index for verified receipts (nothing written).

    ``root_bytes`` is the trust root file as pinned: pages embed it (base64) so the browser can check it
    hashes to the sha256 the page names. ``site_url`` (where the site is published, if known) gives the
    Hugging Face card an absolute link to the published receipt. ``reproductions`` (verified by
    `generator.reproductions.collect_reproductions`, by bundle name) are shown on their card pages and
    published beside them.

    Raises:
        VerificationError: the trust root bytes are not the loaded root's.
    """
    if sha256_bytes(root_bytes) != root.sha256:
        raise VerificationError("the trust root bytes given do not match the loaded trust root")
    env = _environment()
    files: dict[str, bytes] = {}
    pages = []
    by_name: dict[str, list[VerifiedReceipt]] = {}
    for entry in entries:
        by_name.setdefault(entry.name, []).append(entry)
    rows = [index_row(e) for e in entries]
    trust = {"publisher": root.publisher, "version": root.version, "sha256": root.sha256}
    trust_b64 = base64.b64encode(root_bytes).decode("ascii")
    jobs = [
        (
            trust,
            trust_b64,
            site_url,
            entry,
            row,
            by_name[entry.name],
            (reproductions or {}).get(entry.bundle_name, ()),
        )
        for entry, row in zip(entries, rows, strict=True)
    ]
    workers = workers or min(os.cpu_count() or 1, 8)
    if workers > 1 and len(jobs) >= 64:  # each card page is its own work: one process per core, as collect
        with ProcessPoolExecutor(workers) as pool:
            made = list(pool.map(_card_job, jobs, chunksize=16))
    else:
        made = [_card_job(job) for job in jobs]
    for page_path, page_files in made:
        pages.append(page_path)
        files.update(page_files)
    files[VERIFY_JS] = (site_dir() / "assets" / "verify.js").read_bytes()
    files[CATALOG_JS] = (site_dir() / "assets" / "catalog.js").read_bytes()
    files[CATALOG_TABLE_JS] = (site_dir() / "assets" / "catalog-table.js").read_bytes()
    files[VIEWER_JS] = (site_dir() / "assets" / "viewer.js").read_bytes()
    files[STYLE_CSS] = (site_dir() / "assets" / "receipts.css").read_bytes()
    for name in ("buyer", "compare"):
        files[f"{name}/index.md"] = env.get_template(f"{name}.md.j2").render().encode("utf-8")
        pages.append(f"{name}/index.md")
    index = {"format": INDEX_FORMAT, "trust_root": trust, "models": rows}
    files["catalog/index.json"] = json.dumps(index, sort_keys=True, separators=(",", ":")).encode("utf-8")
    table = [table_row(e, r) for e, r in zip(entries, rows, strict=True)]
    pages.extend(listings(env, table, trust, files))
    files[HOME] = home_page(env, table, trust).encode("utf-8")
    pages.append(HOME)
    search = {f"{page_dir(e)}/index.md": search_summary(r) for e, r in zip(entries, table, strict=True)}
    return RenderResult(list(entries), pages, files, search)


_CardJob = tuple[
    dict[str, Any],
    str,
    "str | None",
    VerifiedReceipt,
    dict[str, Any],
    list[VerifiedReceipt],
    "Sequence[Shown]",
]


@functools.cache
def _cached_environment() -> jinja2.Environment:
    return _environment()  # one per process: its templates compile once


def _card_job(job: _CardJob) -> tuple[str, dict[str, bytes]]:
    """One card page with its bundle copy, charts and exports (maybe in a worker process): (path, files)."""
    trust, trust_b64, site_url, entry, row, versions, shown = job
    files: dict[str, bytes] = {}
    page = _CardPage(_cached_environment(), files, trust, trust_b64, site_url)
    return page.render(entry, row, versions, shown), files


@dataclass(frozen=True)
class _CardPage:
    """Renders one verified receipt's card page with its bundle copy, charts and exports into ``files``."""

    env: jinja2.Environment
    files: dict[str, bytes]
    trust: dict[str, Any]
    trust_b64: str
    site_url: str | None

    def render(
        self,
        entry: VerifiedReceipt,
        row: dict[str, Any],
        versions: Sequence[VerifiedReceipt],
        reproductions: Sequence[Shown] = (),
    ) -> str:
        """Write the page's files; returns the page's path (``models/<name>/<version>/index.md``)."""
        base, files = page_dir(entry), self.files
        for shown in reproductions:  # the statements as verified, beside the page
            files[f"{base}/{shown.file}"] = shown.data
        # The bundle as signed: receipt.json and the subjects' verified bytes, nothing else from the folder.
        files[f"{base}/{entry.bundle_name}/receipt.json"] = entry.envelope
        for name, data in sorted(entry.files.items()):
            files[f"{base}/{entry.bundle_name}/{name}"] = data
        runs = _runs(entry)
        viewers = self._viewers(base, entry)
        run_charts = {kind: self._run_charts(base, kind, runs) for kind in charts.RUN_CHARTS}
        scorecard = pack_cards(entry.results, [run.summary for run in entry.predicate.runs])
        latency = self._latency_charts(base, entry.footprints)
        hf_card, bom = cached_exports(entry, receipt_url=receipt_url(self.site_url, row["receipt"]))
        files[f"{base}/{hf_card.file}"] = hf_card.data
        files[f"{base}/{bom.file}"] = bom.data
        cost_svg = charts.cost_by_quant(row["cost"])
        if cost_svg:
            files[f"{base}/cost.svg"] = cost_svg.encode("utf-8")
        history = [
            {"version": e.version, "page": f"../{e.version}/", "issued_at": e.predicate.issuedAt}
            for e in versions
        ]
        signed, licence = figures(entry.predicate, entry.files), licence_view(entry)
        modes = failure_mode_views(entry)
        links, evaluated = failure_mode_links(entry.card, viewers), evaluated_models(entry.card, runs)
        label = label_view(entry, signed, licence, modes, links, reproductions, evaluated)
        text = self.env.get_template("card.md.j2").render(
            entry=entry,
            card=entry.card,
            predicate=entry.predicate,
            row=row,
            runs=runs,
            footprints=entry.footprints,
            charts=run_charts["retention"],
            reliability_charts=run_charts["reliability"],
            robustness_charts=run_charts["robustness"],
            scorecard=scorecard,
            scorecard_raw=raw_sections(scorecard),
            judged=[(r.pack.id, c) for r in entry.results if (c := judged_card(r)) is not None],  # issue #20
            not_validated=NOT_VALIDATED,
            similarity=similarity_section(entry.results),  # issue #20 part 3
            floor_sentence=FLOOR_SENTENCE,
            quantization=quantization_rows(entry.predicate.quantization or []),
            quantization_sentences=quantization_sentences(entry.predicate.quantization or []),
            latency_charts=latency,
            latency=latency_rows(entry.footprints),
            cost_chart=bool(cost_svg),
            exports={"hf": hf_card.file, "bom": bom.file},
            history=history,
            evaluated=evaluated,
            checks=entry.checks,
            subjects=entry.statement.subject,
            envelope_sha256=sha256_bytes(entry.envelope),
            trust=self.trust,
            trust_b64=self.trust_b64,
            title=json.dumps(f"{entry.name} {entry.version}"),
            figures=signed,
            roles=[(role, role_label(role)) for role in roles(entry.predicate)],
            reproductions=reproductions,
            licence=licence,
            label=label,
            overlap=entry.overlap,
            viewers={v.pack_id: f"{v.folder}/" for v in viewers},
            failure_mode_links=links,
            failure_modes=modes,
        )
        files[f"{base}/index.md"] = text.encode("utf-8")
        return f"{base}/index.md"

    def _viewers(self, base: str, entry: VerifiedReceipt) -> list[ViewerPage]:
        """The per-example viewer of each run (generator/viewer.py): its page and its rows-<k>.json."""
        made = viewer_pages(entry)
        for page in made:
            folder = f"{base}/{page.folder}"
            for number in range(1, page.pages + 1):
                self.files[f"{folder}/rows-{number}.json"] = page.page_json(number)
            text = self.env.get_template("viewer.md.j2").render(
                title=json.dumps(f"{page.pack_id}: examples of {entry.name} {entry.version}"),
                page=page,
                first=page.rows[:VIEWER_ROWS],
                pack_id=page.pack_id,
                pack_version=page.pack_version,
                model=f"{entry.name} {entry.version}",
                page_rows=VIEWER_ROWS,
                max_text=MAX_TEXT,
            )
            self.files[f"{folder}/index.md"] = text.encode("utf-8")
        return made

    def _run_charts(self, base: str, kind: str, runs: Sequence[SignedRun]) -> list[tuple[str, str]]:
        """One `charts.RUN_CHARTS` kind per run that has the numbers (none on a floor pack): (pack, file)."""
        draw = charts.RUN_CHARTS[kind]
        made = []
        for run in runs:
            svg = draw(run.results)
            if svg:
                name = f"{kind}-{run.entry.pack.id}.svg"
                self.files[f"{base}/{name}"] = svg.encode("utf-8")
                made.append((run.entry.pack.id, name))
        return made

    def _latency_charts(self, base: str, footprints: Sequence[Footprint]) -> list[tuple[str, str]]:
        """One latency distribution per footprint: (its hardware label, file)."""
        made = []
        for number, footprint in enumerate(footprints, start=1):
            svg = charts.latency_distribution(footprint)
            if svg:
                name = f"latency-{number}.svg"
                self.files[f"{base}/{name}"] = svg.encode("utf-8")
                hardware = footprint.hardware
                made.append((hardware.label or hardware.hw_class, name))
        return made


GENERATED = ("models", "catalog", "assets/receipts", "buyer", "compare", "tags")
"""The trees a render owns in a docs folder; everything else there (hand-written pages) is left alone."""


def _kept(home: Path) -> bool:
    """A docs folder's own ``index.md`` (not one a render wrote): the generated home never replaces it."""
    if not home.is_file() or home.is_symlink():
        return home.is_symlink()
    with home.open("rb") as fh:
        return HOME_MARK.encode("utf-8") not in fh.read(512)


def write(result: RenderResult, out: Path) -> None:
    """Write a render into a docs folder, replacing only the generated trees (``GENERATED``).

    The generated home (``index.md``) is written only where the folder has none, or one a render wrote.

    Every receipt verified before this is called, so nothing is removed for a render that fails to verify.

    Raises:
        UsageError: ``out`` is a file.
        InputError: the folder cannot be written.
    """
    check_folder(out, what="the rendered pages")
    try:
        for tree in GENERATED:
            if (out / tree).is_symlink() or (out / tree).is_file():
                (out / tree).unlink()
            else:
                shutil.rmtree(out / tree, ignore_errors=True)
        for name, data in result.files.items():
            path = out / name
            if name == HOME and _kept(path):
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
    except OSError as exc:
        raise refused(exc, Path(exc.filename or out), what="the rendered pages") from exc
