"""The reviewed licence table receipts computes licence terms from (``schema/licence-table.schema.json``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from receipts.formats._base import Closed, Date, Document, Integer, Omittable, Unique

__all__ = ["Licence", "LicenceTable", "LicenceTerms", "Verdict"]

Verdict = Literal["yes", "no", "unknown"]
"""``$defs/verdict``: unknown is never read as permissive."""

TableDate = Annotated[Date, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$(?!\n)")]

TermId = Annotated[
    str,
    Field(max_length=100, pattern=r"^(?:LicenseRef-[A-Za-z0-9.-]+|[A-Za-z0-9][A-Za-z0-9.+-]*)$(?!\n)"),
]
"""``$defs/term_id``: one SPDX id, LicenseRef-<name> or Hugging Face licence tag."""

Inherited = Literal[
    "attribution", "notice", "use_restrictions", "competing_models", "max_monthly_active_users",
    "model_name_prefix", "terms",
]  # fmt: skip


class LicenceTerms(Closed):
    """``terms``: what the licence permits and obliges."""

    commercial_use: Verdict
    redistribution: Verdict
    derivatives: Verdict
    attribution: Verdict
    notice: Verdict
    use_restrictions: Verdict
    competing_models: Verdict


class Licence(Closed):
    """One reviewed licence (``$defs/licence``)."""

    id: TermId
    aliases: Omittable[Annotated[list[TermId], Unique]] = None
    name: Annotated[str, Field(min_length=1, max_length=200)]
    kind: Literal["open-source", "open-content", "public-domain", "model-licence", "api-terms", "unknown"]
    url: Annotated[str, Field(min_length=1, max_length=500, pattern=r"^https://[!-~]+$(?!\n)")]
    reviewed: TableDate
    terms: LicenceTerms
    max_monthly_active_users: Annotated[Integer, Field(ge=1)] | None
    model_name_prefix: Annotated[str, Field(min_length=1, max_length=50)] | None
    inherits: Annotated[list[Inherited], Unique]
    outputs: Literal["free", "derivative", "same-family", "competing-restricted", "unknown"]
    family: Omittable[
        Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[a-z0-9][a-z0-9.-]*$(?!\n)")]
    ] = None
    summary: Annotated[str, Field(min_length=1, max_length=2000)]


class LicenceTable(Document):
    """A licence table (``receipts.licence-table/v1``): one reviewed version of what licences permit."""

    KIND: ClassVar[str] = "licence-table"

    format: Literal["receipts.licence-table/v1"]
    version: Annotated[Integer, Field(ge=1)]
    reviewed: TableDate
    licences: Annotated[list[Licence], Field(min_length=1)]
