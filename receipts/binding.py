"""The card bound to the evidence: the models a card names are the models the signed runs evaluated.

A card is the publisher's free text; runs and footprints record what was actually measured. ``sign``
refuses and ``verify`` fails (exit 4) when they contradict each other. A card may stay silent about a
role (no ``weights_digest`` for its base; no teachers for an original model, whose runs then compare
against a *reference* model), but what it states must match:

- **teacher**: when the card's ``lineage.teachers`` is not empty, every run's teacher is one of them,
  by weights digest (open weights) or by ``api_identifier`` ``provider:model`` against the endpoint the run
  recorded: ``URL#model`` with that model name on that provider's API host (``PROVIDER_HOSTS``; any other
  provider name is the host itself, e.g. ``gpu-box:Qwen/Qwen2.5-72B``), or a replay's recorded model.
- **base**: when ``lineage.base.weights_digest`` is stated, every run's base is those weights.
- **student**: when the receipt signs weights, every run's ``student`` and ``student@VARIANT`` is those
  weights (a ``fake:`` or served student is not them).
- **footprints** measure the signed weights or a model the signed runs evaluated, or a quantization
  of one of those (``extra.lineage.quantized_from``, recorded from a ``receipts quantize`` manifest).
- **quantized students** (`lineage_problems`): a ``student@QUANT`` whose identity records a lineage was
  quantized from its run's ``student`` (by digest), to the quantization its role names; with signed
  weights, its lineage (not its own file digest) must lead to them.

Digests compare by content: a card may give a single file's plain ``sha256sum`` where a run records the
model_signing root of that one-file folder (``root = sha256(raw file digest)``); both name one file.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from receipts.formats import Card, Footprint, Results
    from receipts.formats.card import Teacher
    from receipts.formats.footprint import BenchModel
    from receipts.formats.quantize_manifest import QuantLineage
    from receipts.formats.results import ModelIdentity

__all__ = [
    "describe",
    "evidence_problems",
    "lineage",
    "lineage_problems",
    "matches_teacher",
    "publisher_problem",
    "quantized_from",
    "same_weights",
]


def same_weights(card_digest: str, run_digest: str | None) -> bool:
    """Whether a digest from a card and one recorded by a run name the same weights."""
    if not run_digest:
        return False
    if card_digest == run_digest:
        return True
    hex_digest = card_digest.removeprefix("sha256:")
    try:
        one_file_root = hashlib.sha256(bytes.fromhex(hex_digest)).hexdigest()
    except ValueError:
        return False
    return run_digest == f"sha256:{one_file_root}"


PROVIDER_HOSTS: Mapping[str, tuple[str, ...]] = {
    "openai": ("api.openai.com",),
    "anthropic": ("api.anthropic.com",),
    "google": ("generativelanguage.googleapis.com", "aiplatform.googleapis.com"),
    "mistral": ("api.mistral.ai",),
    "together": ("api.together.xyz",),
    "groq": ("api.groq.com",),
    "fireworks": ("api.fireworks.ai",),
    "deepseek": ("api.deepseek.com",),
    "openrouter": ("openrouter.ai",),
}
"""The API hosts of the providers a card's ``api_identifier`` may name; any other provider is a host name."""


def _served_matches(api: str, endpoint: str) -> bool:
    """``provider:model`` against a recorded ``URL#model``: the same model, served by that provider's host."""
    provider, _, wanted = api.partition(":")
    url, _, served = endpoint.rpartition("#")
    if not url or served != wanted:
        return False
    host = (urlsplit(url).hostname or "").lower()
    return host in PROVIDER_HOSTS.get(provider, (provider,))


def matches_teacher(claim: Teacher, model: ModelIdentity) -> bool:
    """Whether a run's teacher is the one a card's ``lineage.teachers`` entry names."""
    if claim.weights_digest is not None:
        return same_weights(claim.weights_digest, model.digest)
    api, endpoint = claim.api_identifier or "", model.endpoint
    if not api or endpoint is None:
        return False
    if endpoint == api:  # e.g. a recorded or fake model named exactly as the card names it
        return True
    if model.kind == "openai":
        return _served_matches(api, endpoint)
    # recordings name their model as they please (replay meta): the model name must match, and a
    # recorded URL#model is held to the provider's host as a served one is
    if model.kind == "replay":
        return _served_matches(api, endpoint) if "#" in endpoint else endpoint == api.partition(":")[2]
    return False


def describe(model: ModelIdentity) -> str:
    """A model identity in words: its digest or endpoint, and the spec it was run as."""
    what = model.digest or model.endpoint or "no identity"
    return f"{what} ({model.spec})" if model.spec and model.spec != what else what


def _claims(teachers: Iterable[Teacher]) -> str:
    return ", ".join(str(t.weights_digest or t.api_identifier) for t in teachers)


def _run_problems(name: str, card: Card, results: Results, weights_root: str | None) -> Iterator[str]:
    teachers, base_digest = card.lineage.teachers or [], card.lineage.base.weights_digest
    teacher, base = results.models.get("teacher"), results.models.get("base")
    if teacher is not None and teachers and not any(matches_teacher(t, teacher) for t in teachers):
        yield (
            f"{name}: the run's teacher is {describe(teacher)}, but the card's lineage.teachers "
            f"name {_claims(teachers)}"
        )
    if base is not None and base_digest and not same_weights(base_digest, base.digest):
        yield (
            f"{name}: the run's base is {describe(base)}, but the card's lineage.base.weights_digest "
            f"is {base_digest}"
        )
    students = [
        (r, m) for r, m in sorted(results.models.items()) if r == "student" or r.startswith("student@")
    ]
    for role, model in students if weights_root else []:
        source = quantized_from(model)
        if source is not None and role != "student":
            if source != weights_root:
                yield (
                    f"{name}: the run's {role} was quantized from {source}, not from the signed weights "
                    f"{weights_root}"
                )
        elif model.digest != weights_root:
            yield f"{name}: the run's {role} is {describe(model)}, not the signed weights {weights_root}"


def lineage(model: ModelIdentity | BenchModel) -> QuantLineage | None:
    """The quantize lineage a model identity records (``extra.lineage``), typed; ``None`` when it has none.

    Raises:
        ValueError: ``extra.lineage`` is there but is not a `QuantLineage`.
    """
    from pydantic import ValidationError

    from receipts.formats.quantize_manifest import QuantLineage

    extra = getattr(model, "extra", None)
    if extra is None and model.model_extra:
        extra = model.model_extra.get("extra")
    raw = extra.get("lineage") if isinstance(extra, Mapping) else None
    if raw is None:
        return None
    try:
        return QuantLineage.model_validate(raw, by_alias=True, by_name=False)
    except ValidationError as exc:
        shown = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
        raise ValueError(f"extra.lineage is not a quantize lineage ({shown})") from None


def quantized_from(model: ModelIdentity | BenchModel) -> str | None:
    """The digest a model's lineage says it was quantized from (``None``: no lineage, or a bad one)."""
    try:
        found = lineage(model)
    except ValueError:
        return None
    return found.quantized_from if found else None


def lineage_problems(runs: Sequence[tuple[str, Results]]) -> list[str]:
    """Every ``student@QUANT`` whose recorded lineage does not lead to its run's ``student``, naming both.

    A quantized student (``receipts quantize`` → ``llamacpp:``) records where it came from; the receipt
    signs it as a quantization of *the* student only when that source is the run's ``student`` digest and
    the quantization is the one its role names.
    """
    problems = []
    for name, results in runs:
        student = results.models.get("student")
        for role, model in sorted(results.models.items()):
            if not role.startswith("student@"):
                continue
            try:
                found = lineage(model)
            except ValueError as exc:
                problems.append(f"{name}: models.{role}.{exc}")
                continue
            if found is None:
                continue
            if student is None or found.quantized_from != student.digest:
                signed = student.digest if student is not None else "no student at all"
                source = found.quantized_from
                problems.append(
                    f"{name}: {role} was quantized from {source}, but the run's student is {signed}"
                )
            if found.quant != role.partition("@")[2]:
                problems.append(f"{name}: {role} records the lineage of a {found.quant} file")
    return problems


def evidence_problems(
    card: Card,
    runs: Sequence[tuple[str, Results]],
    footprints: Sequence[tuple[str, Footprint]],
    weights_root: str | None,
) -> list[str]:
    """Every contradiction between the card and the evidence, each naming both values.

    ``runs`` and ``footprints`` are ``(file name, document)`` pairs; ``weights_root`` is the signed
    weights' ``sha256:…`` root, if the receipt signs weights.
    """
    problems = [p for name, results in runs for p in _run_problems(name, card, results, weights_root)]
    known = {m.digest for _, results in runs for m in results.models.values() if m.digest}
    allowed = known | ({weights_root} if weights_root else set())
    for name, footprint in footprints:
        digest = footprint.model.digest
        if digest not in allowed and quantized_from(footprint.model) not in allowed:
            problems.append(
                f"{name}: the footprint measured {digest}, which is neither the signed weights nor a model "
                "the signed runs evaluated"
            )
    return problems


def _plain(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def publisher_problem(card_publisher: str, root_publisher: str) -> str | None:
    """Why a card's publisher is not the trust root's, or ``None`` when they are the same name.

    Names compare exactly, after Unicode NFC only (verify.js does the same): ``Acme ML`` is not
    ``ACME ml`` nor ``Acme  ML``.
    """
    if _plain(card_publisher) == _plain(root_publisher):
        return None
    return (
        f"the card says it is published by {card_publisher!r}, but the pinned trust root is "
        f"{root_publisher!r}'s"
    )
