"""Licence terms, computed: a card's effective terms from a reviewed table, never from its own say-so.

The table (``receipts/data/licences/v<N>.json``, schema ``licence-table``) says for each licence what it
permits (commercial use, redistribution, derivatives), what it obliges (attribution, a notice, use
restrictions, a ban on training competing models, a user threshold, a name prefix), what a derivative
carries (``inherits``) and what training on its outputs means (``outputs``). Published versions never
change: a receipt records the version and sha256 it was computed with, and verify recomputes with that one.

Every verdict is ``yes``, ``no`` or ``unknown``; unknown is never permissive. The student's terms are the
meet of every source that binds it:

- **Base weights** (``lineage.base.license``): the student is a derivative; the base licence's
  permissions bind it, and the obligations the licence ``inherits`` carry over.
- **Teachers**, by the teacher licence's ``outputs``: ``free`` (Apache, MIT: no claim on what its outputs
  train), ``derivative`` (Gemma, Llama 3.1+, RAIL: a distilled student is a derivative and carries those
  terms), ``same-family`` (Llama 2, Llama 3: its outputs may improve only the same family; a student on
  another base gets no commercial use, redistribution or derivatives), ``competing-restricted`` (closed
  APIs), ``unknown``. ``terms_restrict_distillation: true`` on a teacher adds the closed-API restriction.
- **Training data** the publisher trained on: its licence binds like the base's (conservative: a model
  trained on CC-BY-NC data is not cleared for commercial use); ``closed_model_outputs: true`` adds the
  closed-API restriction ("commercial use: no"), ``null`` makes commercial use, redistribution and
  derivatives unknown.
- **Upstream data that reaches the student only through the base weights** (``through_base: true`` on the
  entry, said explicitly by the card): it does not change the computed terms; its terms are taken to be
  what the base's licence states, because the base's licensor granted that licence having trained on
  it. It is listed as a note, with its licence and closed-output flag, so a reviewer sees what was
  accounted for by the base. An entry without ``through_base`` binds, whatever its ``stage`` says; an
  ``original`` model has no base to route data through, so ``through_base`` on its card is refused.

SPDX expressions: ``AND`` means both apply (the meet), ``OR`` means the licensee chooses one whole option
(from table v2: the option whose terms cover the card's claim, or, when none does, the one that leaves the
fewest uncovered problems, then the fewest total, then the least restrictive, then the first written; the
choice is named in the reasons and notes; table v1 kept its original per-permission reading, so receipts
signed with it recompute as signed), ``WITH`` (an exception) and ids not in the table are unknown.

From table v2 on, also: a teacher whose ``api_identifier`` names a known provider (``openai:``,
``anthropic:``, ``google:``/``gemini:``) is bound by that provider's terms from the table whatever licence
the card names (a mismatch is flagged in the reasons), and an unknown provider with a licence that is not
API terms is unknown; and the card's own ``license.id`` must include every licence the computed terms carry
(``carried_terms``), unless ``license.overrides`` names ``license_id``. Refusing a claim beyond the
computed terms and the signed record of both are `receipts.licence_claims`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from receipts.errors import InputError
from receipts.spdx import Expr, parse_expression

if TYPE_CHECKING:
    from receipts.formats import Card
    from receipts.formats.licence_table import Licence, LicenceTable

__all__ = [
    "LATEST_TABLE",
    "PERMISSIONS",
    "Table",
    "Terms",
    "Verdict",
    "compute_terms",
    "load_table",
    "parse_expression",
    "permits",
]

Verdict = Literal["yes", "no", "unknown"]
PERMISSIONS = ("commercial_use", "redistribution", "derivatives")
"""Granted rights: the student has one only when every binding source grants it (no < unknown < yes)."""
OBLIGATIONS = ("attribution", "notice", "use_restrictions", "competing_models")
"""Duties: ``yes`` when any binding source imposes one (``no`` < ``unknown`` < ``yes``)."""
KEYS = PERMISSIONS + OBLIGATIONS
LATEST_TABLE = 2
"""The table version ``sign`` computes with; older versions stay in the package for verify."""
RULES_V2 = 2
"""The first table version whose rules choose whole ``OR`` options, bind API providers and check
``license.id`` against the carried terms."""


_TABLES = Path(__file__).resolve().parent / "data" / "licences"
_RANK: dict[str, int] = {"no": 0, "unknown": 1, "yes": 2}
_LABEL = {
    "commercial_use": "commercial use",
    "redistribution": "redistribution",
    "derivatives": "derivatives",
    "attribution": "attribution required",
    "notice": "licence notice required",
    "use_restrictions": "use restrictions",
    "competing_models": "restriction on training competing models",
}


@dataclass(frozen=True)
class Table:
    """One version of the licence table, with the sha256 of its bytes as shipped."""

    version: int
    sha256: str
    document: LicenceTable = field(compare=False, hash=False, repr=False)
    index: Mapping[str, Licence] = field(compare=False, hash=False, repr=False)

    def lookup(self, term: str) -> Licence | None:
        """The entry for an id or alias (case-insensitive), or ``None``."""
        return self.index.get(term.casefold())


def _index(document: LicenceTable) -> dict[str, Licence]:
    out: dict[str, Licence] = {}
    for entry in document.licences:
        for name in (entry.id, *(entry.aliases or ())):
            out.setdefault(name.casefold(), entry)
    return out


@cache
def load_table(version: int = LATEST_TABLE) -> Table:
    """The licence table of ``version``, validated against its schema and model.

    Raises:
        InputError: no such version ships with this receipts.
        SchemaError: the shipped file does not conform (a broken install).
    """
    from receipts import schemas
    from receipts.documents import parse_json
    from receipts.formats.licence_table import LicenceTable

    path = _TABLES / f"v{version}.json"
    if isinstance(version, bool) or not isinstance(version, int) or not path.is_file():
        shipped = sorted(p.stem for p in _TABLES.glob("v*.json"))
        raise InputError(
            f"licence table version {version!r} is not shipped with this receipts",
            file=path,
            hint=f"shipped versions: {', '.join(shipped)}; upgrade receipts to verify receipts signed with a "
            "newer table",
        )
    data = path.read_bytes()
    value = parse_json(data, file=path)
    schemas.validate(value, "licence-table", file=path)
    document = LicenceTable.parse(value, file=path)
    if document.version != version:
        raise InputError(
            f"the file holds table version {document.version}", file=path, hint="reinstall receipts"
        )
    return Table(version, hashlib.sha256(data).hexdigest(), document, _index(document))


# -- effects: what one source does to the student's terms ------------------------------------------------


@dataclass(frozen=True)
class Terms:
    """Effective terms: a verdict per key with the reasons for it, plus thresholds and carried terms."""

    verdicts: Mapping[str, Verdict]
    reasons: Mapping[str, tuple[str, ...]]
    max_monthly_active_users: int | None = None
    mau_reasons: tuple[str, ...] = ()
    name_prefixes: tuple[str, ...] = ()
    prefix_reasons: tuple[str, ...] = ()
    carried: tuple[str, ...] = ()
    notes: tuple[str, ...] = field(default=())
    rules: int = field(default=1, compare=False)
    """The table version whose rules apply (not signed: the record names the table)."""

    def verdict(self, key: str) -> Verdict:
        """The verdict for one of `KEYS`."""
        return self.verdicts[key]

    def as_json(self) -> dict[str, Any]:
        """The signed form (``predicate.licence.computed``)."""
        out: dict[str, Any] = {
            k: {"verdict": self.verdicts[k], "reasons": list(self.reasons[k])} for k in KEYS
        }
        out["max_monthly_active_users"] = {
            "value": self.max_monthly_active_users,
            "reasons": list(self.mau_reasons),
        }
        out["model_name_prefix"] = {"value": list(self.name_prefixes), "reasons": list(self.prefix_reasons)}
        out["carried_terms"] = list(self.carried)
        out["notes"] = list(self.notes)
        return out


def _neutral() -> Terms:
    return Terms({k: ("yes" if k in PERMISSIONS else "no") for k in KEYS}, {k: () for k in KEYS})


def _uniform(verdict: Verdict, keys: Iterable[str], reason: str) -> Terms:
    base = _neutral()
    chosen = set(keys)
    return replace(
        base,
        verdicts={k: (verdict if k in chosen else base.verdicts[k]) for k in KEYS},
        reasons={k: ((reason,) if k in chosen else ()) for k in KEYS},
    )


def _worse(key: str, a: Verdict, b: Verdict) -> bool:
    """Is ``a`` more restrictive than ``b`` for ``key``?"""
    return _RANK[a] < _RANK[b] if key in PERMISSIONS else _RANK[a] > _RANK[b]


def _merge(parts: Sequence[Terms], *, choose: bool) -> Terms:
    """AND (``choose=False``: every part applies, the most restrictive wins) or OR (the least restrictive)."""
    verdicts: dict[str, Verdict] = {}
    reasons: dict[str, tuple[str, ...]] = {}
    for key in KEYS:
        pick = parts[0].verdicts[key]
        for part in parts[1:]:
            if _worse(key, part.verdicts[key], pick) != choose and part.verdicts[key] != pick:
                pick = part.verdicts[key]
        verdicts[key] = pick
        reasons[key] = _dedupe(r for p in parts if p.verdicts[key] == pick for r in p.reasons[key])
    limits = [p.max_monthly_active_users for p in parts]
    if choose:
        mau = None if None in limits else max(x for x in limits if x is not None)
        prefixes = tuple(sorted(set.intersection(*(set(p.name_prefixes) for p in parts))))
    else:
        known = [x for x in limits if x is not None]
        mau = min(known) if known else None
        prefixes = tuple(sorted({x for p in parts for x in p.name_prefixes}))
    return Terms(
        verdicts,
        reasons,
        mau,
        _dedupe(
            r for p in parts if p.max_monthly_active_users == mau and mau is not None for r in p.mau_reasons
        ),
        prefixes,
        _dedupe(r for p in parts if set(prefixes) & set(p.name_prefixes) for r in p.prefix_reasons),
        _dedupe(x for p in parts for x in p.carried),
        _dedupe(x for p in parts for x in p.notes),
    )


def _clip(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"


def _dedupe(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _entry_terms(entry: Licence, who: str, how: str) -> Terms:
    """What ``entry`` binds on a model derived from ``who`` (``how``: "is a derivative of", ...)."""
    verdicts: dict[str, Verdict] = {}
    reasons: dict[str, tuple[str, ...]] = {}
    inherits = set(entry.inherits)
    for key in KEYS:
        value: Verdict = getattr(entry.terms, key)
        if key in OBLIGATIONS and key not in inherits:
            value = "no"
        verdicts[key] = value
        restrictive = value != ("yes" if key in PERMISSIONS else "no")
        reasons[key] = (
            (f"{who} {how} {entry.id} ({entry.name}): {_LABEL[key]} {value}",) if restrictive else ()
        )
    mau = entry.max_monthly_active_users if "max_monthly_active_users" in inherits else None
    prefix = entry.model_name_prefix if "model_name_prefix" in inherits else None
    return Terms(
        verdicts,
        reasons,
        mau,
        (f"{who} {how} {entry.id}: a separate licence is needed above {mau:,} monthly active users",)
        if mau
        else (),
        (prefix,) if prefix else (),
        (f"{who} {how} {entry.id}: a model it helps create must have a name starting with {prefix!r}",)
        if prefix
        else (),
        (entry.id,) if "terms" in inherits else (),
    )


# -- SPDX expressions --------------------------------------------------------------------------------------


Chooser = Callable[[Sequence[Terms]], tuple[int, str]]
"""Picks one whole option of an ``OR``: ``(index, why)``."""


def _render(tree: Expr) -> str:
    """An expression tree written back as SPDX text (for the reasons)."""
    kind = tree[0]
    if kind == "id":
        return str(tree[1])
    if kind == "with":
        return f"{tree[1]} WITH {tree[2]}"
    if kind == "bad":
        return "(unreadable)"
    return f" {kind.upper()} ".join(
        f"({_render(t)})" if t[0] in ("and", "or") else _render(t) for t in tree[1]
    )


def _evaluate(tree: Expr, leaf: Any, choose: Chooser | None = None, who: str = "") -> Terms:
    kind = tree[0]
    if kind == "and":
        return _merge([_evaluate(t, leaf, choose, who) for t in tree[1]], choose=False)
    if kind == "or":
        options = [_evaluate(t, leaf, choose, who) for t in tree[1]]
        if choose is None:  # table v1's reading, kept so receipts signed with it recompute as signed
            return _merge(options, choose=True)
        index, why = choose(options)
        picked = options[index]
        note = (
            f"{who}: {_clip(_render(tree))} lets the licensee choose one licence; these terms are those of "
            f"{_clip(_render(tree[1][index]))} ({why})"
        )
        return replace(
            picked,
            reasons={k: (note, *picked.reasons[k]) for k in KEYS},
            notes=(*picked.notes, note),
        )
    result: Terms = leaf(tree)
    return result


def _restrictiveness(terms: Terms) -> int:
    """How much ``terms`` withhold or oblige (0: nothing): the tie-break between options."""
    score = sum(
        (2 - _RANK[terms.verdicts[k]]) if k in PERMISSIONS else _RANK[terms.verdicts[k]] for k in KEYS
    )
    return score + (terms.max_monthly_active_users is not None) + len(terms.name_prefixes)


def _best_for(permission: str) -> Chooser:
    """The option that grants ``permission`` best, then the least restrictive, then the first."""

    def choose(options: Sequence[Terms]) -> tuple[int, str]:
        keys = [(-_RANK[o.verdicts[permission]], _restrictiveness(o), i) for i, o in enumerate(options)]
        return min(keys)[2], f"the option that grants {_LABEL[permission]} best"

    return choose


def _expression_terms(
    expression: str,
    who: str,
    how: str,
    table: Table,
    entry_effect: Any = None,
    choose: Chooser | None = None,
) -> tuple[Terms, list[Licence]]:
    """Terms of ``expression`` for a model derived from ``who``; also the table entries it named."""
    found: list[Licence] = []

    def leaf(node: Expr) -> Terms:
        if node[0] == "bad":
            return _uniform(
                "unknown", KEYS, f"{who}: licence {_clip(expression)!r} cannot be read ({node[1]})"
            )
        if node[0] == "with":
            return _uniform(
                "unknown",
                KEYS,
                f"{who}: {node[1]} WITH {node[2]}: licence exceptions are not in the licence table",
            )
        entry = table.lookup(node[1])
        if entry is None:
            return _uniform(
                "unknown", KEYS, f"{who}: {node[1]} is not in the licence table (v{table.version})"
            )
        found.append(entry)
        if entry_effect is not None:
            result: Terms = entry_effect(entry)
            return result
        return _entry_terms(entry, who, how)

    chooser = choose if table.version >= RULES_V2 else None
    return _evaluate(parse_expression(expression), leaf, chooser, who), found


def permits(
    expression: str, permission: str, *, table_version: int = LATEST_TABLE
) -> tuple[Verdict, tuple[str, ...]]:
    """Does material under ``expression`` permit ``permission``? ``(verdict, reasons)``.

    ``permission`` is one of ``commercial_use``, ``redistribution``, ``derivatives``. For example
    ``permits("CC-BY-4.0", "redistribution") == ("yes", (...))``; an id not in the table, a ``WITH``
    exception or an unreadable expression is ``unknown``, never ``yes``. Each ``OR`` is answered with the
    one option that grants this single permission best, so the verdict for an ``OR`` is the best of its
    options' verdicts; a question about several permissions together (a card's claim) must not combine
    these answers, since each may come from a different option: use :func:`compute_terms`, which picks
    one whole option for the whole claim.

    Raises:
        ValueError: ``permission`` is not one of those three.
        InputError: the table version is not shipped.
    """
    if permission not in PERMISSIONS:
        raise ValueError(f"permission must be one of {', '.join(PERMISSIONS)}, not {permission!r}")
    terms, _ = _expression_terms(
        str(expression), "material", "licensed as", load_table(table_version), choose=_best_for(permission)
    )
    verdict = terms.verdicts[permission]
    if verdict == "yes":
        return verdict, (
            f"{_clip(str(expression))} permits {_LABEL[permission]} (licence table v{table_version})",
        )
    return verdict, terms.reasons[permission]


# -- a card's effective terms ------------------------------------------------------------------------------

_CLOSED_KEYS = ("commercial_use", "redistribution", "derivatives", "use_restrictions", "competing_models")


def _closed_outputs(reason: str) -> Terms:
    """The closed-API restriction: no commercial use (the student may compete), the rest unknown."""
    base = _uniform("unknown", ("redistribution", "derivatives"), reason)
    return replace(
        base,
        verdicts={
            **base.verdicts,
            "commercial_use": "no",
            "use_restrictions": "yes",
            "competing_models": "yes",
        },
        reasons={
            **base.reasons,
            **{k: (reason,) for k in ("commercial_use", "use_restrictions", "competing_models")},
        },
    )


_API_PROVIDERS = {
    "openai": "LicenseRef-OpenAI-Terms-of-Use",
    "anthropic": "LicenseRef-Anthropic-Terms",
    "google": "LicenseRef-Google-Gemini-API-Terms",
    "gemini": "LicenseRef-Google-Gemini-API-Terms",
    "google-gemini": "LicenseRef-Google-Gemini-API-Terms",
}
"""``api_identifier`` provider prefix -> the table entry of that provider's API terms (from table v2)."""


def _provider_terms(teacher: Any, who: str, table: Table, named: Sequence[Licence]) -> list[Terms]:
    """What an API teacher's provider binds, whatever licence the card names for it (table v2 on)."""
    provider = str(teacher.api_identifier).split(":", 1)[0].casefold()
    entry = table.lookup(_API_PROVIDERS.get(provider, ""))
    if entry is None:
        if any(e.kind == "api-terms" for e in named):
            return []  # an API teacher under API terms the table knows: those terms bind (as named)
        return [
            _uniform(
                "unknown",
                KEYS,
                f"{who} is a closed API of a provider not in the licence table "
                f"({_clip(teacher.api_identifier)}) and the card names {_clip(teacher.license)!r}, which are "
                "not API terms: what its outputs may train is unknown",
            )
        ]
    bound = _entry_terms(entry, who, f"is served by the {provider} API, bound by")
    flags = []
    if entry.id not in {e.id for e in named}:
        flags.append(
            f"{who}: the card names its licence {_clip(teacher.license)!r}, but its api_identifier "
            f"({_clip(teacher.api_identifier)}) is a {provider} API, whose terms ({entry.id}) bind its "
            "outputs whatever licence the card names"
        )
    if teacher.terms_restrict_distillation is False and entry.terms.competing_models == "yes":
        flags.append(
            f"{who}: the card says its terms do not restrict distillation, but {entry.id} restricts using "
            "its outputs to develop competing models"
        )
    if not flags:
        return [bound]
    return [
        replace(
            bound,
            reasons={k: ((*flags, *bound.reasons[k]) if bound.reasons[k] else ()) for k in KEYS},
            notes=tuple(flags),
        )
    ]


def _teacher_terms(
    card: Card, table: Table, base_families: set[str], choose: Chooser | None = None
) -> list[Terms]:
    out = []
    for teacher in card.lineage.teachers or []:
        who = f"teacher {teacher.name} (distilled into this model)"

        def effect(entry: Licence, who: str = who) -> Terms:
            if entry.outputs == "free":
                return _neutral()
            if entry.outputs == "unknown":
                return _uniform(
                    "unknown", KEYS, f"{who} is licensed {entry.id}: what its outputs may train is unknown"
                )
            if entry.outputs == "same-family" and entry.family not in base_families:
                forbidden = _uniform(
                    "no",
                    PERMISSIONS,
                    f"{who} is licensed {entry.id}, which forbids using its outputs to improve any other "
                    "large "
                    f"language model than its own family, and the base is not one of them",
                )
                return _merge([forbidden, _entry_terms(entry, who, "is licensed")], choose=False)
            return _entry_terms(entry, who, "is licensed")

        terms, named = _expression_terms(teacher.license, who, "is licensed", table, effect, choose)
        out.append(terms)
        if table.version >= RULES_V2 and teacher.api_identifier is not None:
            out.extend(_provider_terms(teacher, who, table, named))
        if teacher.terms_restrict_distillation:
            out.append(
                _closed_outputs(
                    f"{who}: the card says its terms restrict training other models on its outputs"
                )
            )
        elif teacher.api_identifier is not None and teacher.terms_restrict_distillation is None:
            out.append(
                _uniform(
                    "unknown",
                    _CLOSED_KEYS,
                    f"{who} is a closed API ({teacher.api_identifier}) and the card does not say whether its "
                    "terms restrict distillation",
                )
            )
    return out


def _data_terms(card: Card, table: Table, choose: Chooser | None = None) -> tuple[list[Terms], list[str]]:
    out, notes = [], []
    for data in card.training_data:
        who = f"training data {data.name!r}"
        if data.through_base:
            notes.append(
                f"{who} ({data.license}, closed-model outputs: {_flag(data.closed_model_outputs)}) reaches "
                "this model only through the base weights, as the card says: its terms are taken to be those "
                "of the "
                f"base's licence ({card.lineage.base.license})"
            )
            continue
        terms, _ = _expression_terms(data.license, who, "is licensed", table, choose=choose)
        out.append(terms)
        if data.closed_model_outputs:
            out.append(
                _closed_outputs(
                    f"{who} includes outputs of a closed API whose terms restrict training competing models"
                )
            )
        elif data.closed_model_outputs is None:
            out.append(
                _uniform(
                    "unknown",
                    _CLOSED_KEYS,
                    f"{who}: the card does not know whether it includes outputs of a closed API model",
                )
            )
    return out, notes


def _flag(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


def compute_terms(card: Card, table: Table | None = None) -> Terms:
    """The student's effective licence terms, with reasons, from the card's base, teachers and data."""
    table = table or load_table()
    choose = _claim_chooser(card, table.version)
    base = card.lineage.base
    base_terms, base_entries = _expression_terms(
        base.license, f"base {base.name}", "is licensed", table, choose=choose
    )
    families = {e.family for e in base_entries if e.family}
    teachers = _teacher_terms(card, table, families, choose)
    data, notes = _data_terms(card, table, choose)
    merged = _merge([base_terms, *teachers, *data], choose=False)
    reasons = dict(merged.reasons)
    for key in KEYS:
        if not reasons[key]:
            reasons[key] = (
                f"{_LABEL[key]}: {merged.verdicts[key]} under every source (licence table v{table.version})",
            )
    return replace(merged, reasons=reasons, notes=(*merged.notes, *notes), rules=table.version)


def _claim_chooser(card: Card, rules: int) -> Chooser:
    """For an ``OR``: the one whole option that covers the card's claim (see the module docstring)."""
    overridden = {o.permission for o in card.license.overrides or ()}

    def choose(options: Sequence[Terms]) -> tuple[int, str]:
        keyed = []
        for i, option in enumerate(options):
            found = _excesses(card, replace(option, rules=rules))
            uncovered = sum(e.permission not in overridden for e in found)
            keyed.append((uncovered, len(found), _restrictiveness(option), i))
        uncovered, total, _, index = min(keyed)
        if total == 0:
            return index, "an option that covers the card's whole claim"
        if uncovered == 0:
            return index, "an option that covers the card's whole claim with its overrides"
        return index, (
            f"no option covers the card's whole claim; this one leaves the fewest problems ({uncovered})"
        )

    return choose


# -- declared versus computed ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Excess:
    """A declared permission beyond the computed terms."""

    permission: str
    declared: str
    computed: str
    reasons: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        """The signed form."""
        return {
            "permission": self.permission,
            "declared": self.declared,
            "computed": self.computed,
            "reasons": list(self.reasons),
        }


def _excesses(card: Card, terms: Terms) -> list[Excess]:
    declared = card.license.permissions
    out = []
    for key in PERMISSIONS:
        if getattr(declared, key) and terms.verdicts[key] != "yes":
            out.append(Excess(key, "true", terms.verdicts[key], terms.reasons[key]))
    duty = max(terms.verdicts["attribution"], terms.verdicts["notice"], key=_RANK.__getitem__)
    if not declared.attribution_required and duty != "no":
        why = terms.reasons["attribution"] + terms.reasons["notice"]
        out.append(Excess("attribution_required", "false", duty, _dedupe(why)))
    restricted = max(
        terms.verdicts["use_restrictions"], terms.verdicts["competing_models"], key=_RANK.__getitem__
    )
    if not declared.output_use_restrictions and restricted != "no":
        why = terms.reasons["use_restrictions"] + terms.reasons["competing_models"]
        out.append(Excess("output_use_restrictions", "none", restricted, _dedupe(why)))
    limit = terms.max_monthly_active_users
    stated = declared.user_thresholds.max_monthly_active_users if declared.user_thresholds else None
    if limit is not None and (stated is None or stated > limit):
        out.append(
            Excess(
                "user_thresholds",
                "none" if stated is None else f"{stated:,}",
                f"{limit:,}",
                terms.mau_reasons,
            )
        )
    for prefix in terms.name_prefixes:
        if not _squash(card.model.name).startswith(_squash(prefix)):
            out.append(
                Excess("model_name_prefix", card.model.name, f"starts with {prefix!r}", terms.prefix_reasons)
            )
    if terms.rules >= RULES_V2 and terms.carried:
        table = load_table(terms.rules)
        named = _included_ids(parse_expression(card.license.id), table)
        missing = [c for c in terms.carried if c.casefold() not in named]
        if missing:
            out.append(
                Excess(
                    "license_id",
                    card.license.id,
                    "a licence that includes " + " and ".join(missing),
                    tuple(
                        f"the computed terms carry {c}: a model derived from material under it is "
                        "distributed under its terms"
                        for c in missing
                    ),
                )
            )
    return out


def _included_ids(tree: Expr, table: Table) -> set[str]:
    """The licence ids (table ids, casefolded) that apply whichever option of each ``OR`` is chosen."""
    kind = tree[0]
    if kind in ("id", "with"):
        entry = table.lookup(tree[1])
        return {(entry.id if entry else str(tree[1])).casefold()}
    if kind == "and":
        return set().union(*(_included_ids(t, table) for t in tree[1]))
    if kind == "or":
        return set.intersection(*(_included_ids(t, table) for t in tree[1]))
    return set()


def _squash(text: str) -> str:
    return "".join(c for c in text.casefold() if c.isalnum())
