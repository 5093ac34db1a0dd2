"""Computed licence terms: the table, SPDX expressions, inheritance rules, overrides, sign and verify.

Cards are shaped after real releases (a Llama 3.1 teacher on an Apache base, GPT-4 outputs in the
training data, a Gemma teacher, CC-BY-NC data) and go through the real ``receipts validate`` CLI and real
signing and verification.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import rfc8785
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from receipts import licence_claims, licences
from receipts.cli import main
from receipts.dsse import sign_envelope
from receipts.errors import SchemaError, VerificationError
from receipts.formats import Card
from receipts.keys import generate
from receipts.sign import PAYLOAD_TYPE, sign_receipt
from receipts.trust import new_root, trust_root_from_bytes
from receipts.verify import verify_receipt

DATA = Path(__file__).parents[1] / "data"
MINIMAL = yaml.safe_load((DATA / "cards" / "card_valid_minimal.yaml").read_text("utf-8"))
DIGEST = "sha256:" + "ab" * 32
ISSUED = datetime(2026, 6, 1, 12, tzinfo=UTC)
NOW = datetime(2026, 6, 2, tzinfo=UTC)


def card(**changes: Any) -> dict[str, Any]:
    """The minimal valid card (MIT, original, CC-BY-4.0 data) with top-level sections replaced."""
    value = copy.deepcopy(MINIMAL)
    value.update(copy.deepcopy(changes))
    return value


def distilled(
    teacher: dict[str, Any], base_license: str = "Apache-2.0", name: str = "tiny-student"
) -> dict[str, Any]:
    value = card()
    value["model"]["name"] = name
    value["lineage"] = {
        "relation": "distilled",
        "base": {**MINIMAL["lineage"]["base"], "name": "example/base", "license": base_license},
        "teachers": [teacher],
        "distillation": {"method": "logit", "objective": "KL", "corpus": "our own prompts"},
    }
    value["license"]["id"] = "Apache-2.0"
    return value


LLAMA_31 = {
    "name": "meta-llama/Llama-3.1-8B-Instruct",
    "weights_digest": DIGEST,
    "license": "LicenseRef-Llama-3.1-Community-License",
}
LLAMA_3 = {
    "name": "meta-llama/Meta-Llama-3-8B-Instruct",
    "weights_digest": DIGEST,
    "license": "LicenseRef-Llama-3-Community-License",
}
GEMMA = {"name": "google/gemma-3-1b-it", "weights_digest": DIGEST, "license": "LicenseRef-Gemma-Terms-of-Use"}
GPT4 = {
    "name": "GPT-4o",
    "api_identifier": "openai:gpt-4o-2024-08-06",
    "license": "LicenseRef-OpenAI-Terms-of-Use",
    "terms_restrict_distillation": True,
}


def write(tmp_path: Path, value: dict[str, Any], name: str = "card.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(value, sort_keys=False), "utf-8")
    return path


def validate(capsys: pytest.CaptureFixture[str], path: Path) -> tuple[int, str]:
    code = main(["validate", str(path)])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def terms_of(value: dict[str, Any]) -> licences.Terms:
    return licences.compute_terms(Card.parse(value))


# -- the table ---------------------------------------------------------------------------------------------


def test_the_table_holds_every_licence_the_catalog_needs_reviewed_and_sourced():
    table = licences.load_table()
    needed = [
        "Apache-2.0",
        "MIT",
        "BSD-2-Clause",
        "BSD-3-Clause",
        "CC0-1.0",
        "CC-BY-4.0",
        "CC-BY-SA-4.0",
        "CC-BY-NC-4.0",
        "CC-BY-NC-SA-4.0",
        "openrail",
        "openrail++",
        "creativeml-openrail-m",
        "bigscience-openrail-m",
        "bigscience-bloom-rail-1.0",
        "llama2",
        "llama3",
        "llama3.1",
        "llama3.2",
        "llama3.3",
        "gemma",
        "LicenseRef-Qwen-License",
        "LicenseRef-Qwen-Research-License",
        "LicenseRef-OpenAI-Terms-of-Use",
        "LicenseRef-Anthropic-Terms",
        "LicenseRef-Google-Gemini-API-Terms",
        "NOASSERTION",
    ]
    for name in needed:
        entry = table.lookup(name)
        assert entry is not None, name
        assert entry.url.startswith("https://")
        assert entry.reviewed == "2026-12-06"
    assert table.lookup("llama3.1").max_monthly_active_users == 700_000_000
    assert table.lookup("llama3.1").model_name_prefix == "Llama"
    assert table.lookup("LicenseRef-Qwen-License").max_monthly_active_users == 100_000_000
    assert table.lookup("LicenseRef-Qwen-Research-License").terms.commercial_use == "no"
    assert table.lookup("NOASSERTION").terms.commercial_use == "unknown"
    data = (
        Path(licences.__file__).parent / "data" / "licences" / f"v{licences.LATEST_TABLE}.json"
    ).read_bytes()
    assert table.sha256 == hashlib.sha256(data).hexdigest()


def test_published_table_v1_is_byte_identical_for_the_receipts_signed_with_it():
    # receipts signed with v1 record this sha256, and verify recomputes with v1: it must never change
    assert licences.load_table(1).sha256 == "f100941667a3ff255a25f9ef17badd14e5b8239b14c35fcf589d6cdfb3624a3b"
    assert licences.LATEST_TABLE >= 2


def test_every_shipped_table_version_loads_and_an_unknown_one_is_refused():
    shipped = sorted((Path(licences.__file__).parent / "data" / "licences").glob("v*.json"))
    assert [p.name for p in shipped][-1] == f"v{licences.LATEST_TABLE}.json"
    for path in shipped:
        assert licences.load_table(int(path.stem[1:])).version == int(path.stem[1:])
    with pytest.raises(Exception, match="licence table version 99 is not shipped"):
        licences.load_table(99)


# -- SPDX expressions --------------------------------------------------------------------------------------


def test_and_means_both_apply_or_means_the_licensee_chooses():
    assert licences.permits("MIT AND CC-BY-NC-4.0", "commercial_use")[0] == "no"
    assert licences.permits("MIT OR CC-BY-NC-4.0", "commercial_use")[0] == "yes"
    assert licences.permits("(MIT OR CC-BY-NC-4.0) AND CC-BY-SA-4.0", "commercial_use")[0] == "yes"
    assert licences.permits("CC-BY-NC-4.0 AND (MIT OR Apache-2.0)", "commercial_use")[0] == "no"
    # AND binds tighter than OR (SPDX): MIT OR (Apache AND NC)
    assert licences.permits("MIT OR Apache-2.0 AND CC-BY-NC-4.0", "commercial_use")[0] == "yes"
    verdict, reasons = licences.permits("Apache-2.0 AND CC-BY-NC-4.0", "commercial_use")
    assert verdict == "no"
    assert "CC-BY-NC-4.0" in reasons[0]


def test_with_exceptions_unknown_ids_and_unreadable_expressions_are_unknown_never_permissive():
    cases = {
        "Apache-2.0 WITH LLVM-exception": "licence exceptions are not in the licence table",
        "LicenseRef-Acme-Internal": f"is not in the licence table (v{licences.LATEST_TABLE})",
        "GPL-2.0+": "is not in the licence table",
        "MIT and Apache-2.0": "unexpected 'and'",  # operators are upper case in SPDX
        "((MIT": "a parenthesis is not closed",
        "MIT AND": "expected a licence id",
        "AND": "names no licence",
        "": "names no licence",
    }
    for expression, why in cases.items():
        verdict, reasons = licences.permits(expression, "redistribution")
        assert verdict == "unknown", expression
        assert why in " ".join(reasons), (expression, reasons)
    # an unknown option never lets an OR through on its own, but a known permissive one does
    assert licences.permits("LicenseRef-Acme OR NOASSERTION", "commercial_use")[0] == "unknown"
    assert licences.permits("LicenseRef-Acme OR MIT", "commercial_use")[0] == "yes"
    assert licences.permits("LicenseRef-Acme AND MIT", "commercial_use")[0] == "unknown"


def test_hostile_expressions_are_bounded():
    started = time.monotonic()
    for expression in (
        " AND ".join(["MIT"] * 100),
        "MIT " * 300_000,
        "(" * 5000 + "MIT" + ")" * 5000,
        "(" * 17 + "MIT" + ")" * 17,
    ):
        verdict, reasons = licences.permits(expression, "commercial_use")
        assert verdict == "unknown"
        assert len(reasons[0]) < 300  # the expression is quoted clipped, not whole
    assert time.monotonic() - started < 2
    with pytest.raises(ValueError, match="permission must be one of"):
        licences.permits("MIT", "attribution")


def test_permits_answers_redistribution_for_pack_licences():
    assert licences.permits("CC-BY-4.0", "redistribution") == (
        "yes",
        (f"CC-BY-4.0 permits redistribution (licence table v{licences.LATEST_TABLE})",),
    )
    assert licences.permits("cc-by-sa-4.0", "redistribution")[0] == "yes"  # ids match without regard to case
    assert licences.permits("LicenseRef-OpenAI-Terms-of-Use", "redistribution")[0] == "unknown"


# -- inheritance rules -------------------------------------------------------------------------------------


def test_llama_31_teacher_on_an_apache_base_gives_a_commercial_student_with_llama_terms(tmp_path, capsys):
    value = distilled(LLAMA_31, name="llama-tiny-student")
    value["license"]["id"] = "Apache-2.0 AND LicenseRef-Llama-3.1-Community-License"
    value["license"]["permissions"]["output_use_restrictions"] = ["Llama 3.1 Acceptable Use Policy"]
    value["license"]["permissions"]["user_thresholds"] = {"max_monthly_active_users": 700_000_000}
    terms = terms_of(value)
    assert terms.verdict("commercial_use") == "yes"
    assert terms.verdict("use_restrictions") == "yes"
    assert terms.max_monthly_active_users == 700_000_000
    assert terms.name_prefixes == ("Llama",)
    assert terms.carried == ("LicenseRef-Llama-3.1-Community-License",)
    code, text = validate(capsys, write(tmp_path, value))
    assert code == 0, text
    assert "commercial use yes" in text

    value["model"]["name"] = "tiny-student"  # 1(b)(i): a derived model's name starts with "Llama"
    del value["license"]["permissions"]["user_thresholds"]
    code, text = validate(capsys, write(tmp_path, value))
    assert code == 3
    assert (
        "$.model.name: declares model_name_prefix: tiny-student, but the computed licence terms say "
        "starts with 'Llama'" in text
    )
    assert "$.license.permissions.user_thresholds: declares user_thresholds: none" in text
    assert "700,000,000 monthly active users" in text


def test_llama_3_teacher_forbids_improving_a_model_of_another_family(tmp_path, capsys):
    value = distilled(LLAMA_3, name="llama-3-tiny")
    terms = terms_of(value)
    assert terms.verdict("commercial_use") == "no"
    assert (
        "forbids using its outputs to improve any other large language model"
        in terms.reasons["commercial_use"][0]
    )
    code, text = validate(capsys, write(tmp_path, value))
    assert code == 3
    assert "declares commercial_use: true, but the computed licence terms say no" in text
    # the same teacher on a Llama 3 base: its own family, so the Llama 3 terms carry instead
    value = distilled(LLAMA_3, base_license="LicenseRef-Llama-3-Community-License", name="llama-3-tiny")
    assert terms_of(value).verdict("commercial_use") == "yes"


def test_gpt4_outputs_in_the_training_data_refuse_a_commercial_claim(tmp_path, capsys):
    value = card()
    value["training_data"].append(
        {
            "name": "HuggingFaceH4/ultrafeedback_binarized",
            "source": "https://huggingface.co/datasets/HuggingFaceH4/ultrafeedback_binarized",
            "synthetic": True,
            "closed_model_outputs": True,
            "license": "MIT",
        }
    )
    path = write(tmp_path, value)
    code, text = validate(capsys, path)
    assert code == 3
    assert str(path) in text
    assert (
        "$.license.permissions.commercial_use: declares commercial_use: true, but the computed licence terms "
        "say no: training data 'HuggingFaceH4/ultrafeedback_binarized' includes outputs of a closed API "
        "whose "
        "terms restrict training competing models"
    ) in text
    assert "license.overrides: [{permission: commercial_use, reason: ...}]" in text
    assert "Traceback" not in text


def test_a_closed_api_teacher_whose_terms_restrict_distillation_refuses_commercial_use():
    terms = terms_of(distilled(GPT4))
    assert terms.verdict("commercial_use") == "no"
    assert terms.verdict("competing_models") == "yes"
    assert terms.verdict("redistribution") == "unknown"
    # the card not saying whether an API teacher's terms restrict distillation is unknown, not permission
    silent = {k: v for k, v in GPT4.items() if k != "terms_restrict_distillation"} | {
        "license": "LicenseRef-Acme-API",
        "api_identifier": "acme:model-2026-01-01",
    }
    assert terms_of(distilled(silent)).verdict("commercial_use") == "unknown"


def test_a_gemma_teacher_carries_the_gemma_terms_into_the_student(tmp_path, capsys):
    value = distilled(GEMMA)
    terms = terms_of(value)
    assert "LicenseRef-Gemma-Terms-of-Use" in terms.carried
    assert terms.verdict("use_restrictions") == "yes"
    assert any("Gemma Terms of Use" in r for r in terms.reasons["use_restrictions"])
    code, text = validate(capsys, write(tmp_path, value))
    assert code == 3
    assert "declares output_use_restrictions: none, but the computed licence terms say yes" in text
    value["license"]["permissions"]["output_use_restrictions"] = ["Gemma Prohibited Use Policy"]
    value["license"]["id"] = "Apache-2.0 AND LicenseRef-Gemma-Terms-of-Use"
    assert validate(capsys, write(tmp_path, value))[0] == 0


def test_non_commercial_data_makes_a_non_commercial_student(tmp_path, capsys):
    value = card()
    value["training_data"][0]["license"] = "CC-BY-NC-4.0"
    terms = terms_of(value)
    assert terms.verdict("commercial_use") == "no"
    assert "CC-BY-NC-4.0" in terms.reasons["commercial_use"][0]
    assert validate(capsys, write(tmp_path, value))[0] == 3
    value["license"]["permissions"]["commercial_use"] = False
    value["license"]["permissions"]["output_use_restrictions"] = ["non-commercial use only"]
    assert validate(capsys, write(tmp_path, value))[0] == 0


def test_unknown_licences_are_unknown_and_upstream_data_needs_an_explicit_through_base(tmp_path, capsys):
    value = card()
    value["lineage"]["base"]["license"] = "LicenseRef-Acme-Internal"
    terms = terms_of(value)
    assert {terms.verdict(k) for k in licences.PERMISSIONS} == {"unknown"}
    assert validate(capsys, write(tmp_path, value))[0] == 3

    value = card()
    value["lineage"]["relation"] = "finetuned"  # the base weights carry upstream data
    value["training_data"].append(
        {
            "name": "upstream pretraining",
            "source": "the base's card",
            "synthetic": None,
            "closed_model_outputs": None,
            "license": "NOASSERTION",
        }
    )
    assert terms_of(value).verdict("commercial_use") == "unknown"
    code, text = validate(capsys, write(tmp_path, value))
    assert code == 3
    assert "through_base: true" in text
    value["training_data"][-1]["through_base"] = True
    terms = terms_of(value)
    assert terms.verdict("commercial_use") == "yes"
    assert "reaches this model only through the base weights" in terms.notes[0]
    assert validate(capsys, write(tmp_path, value))[0] == 0


def test_an_original_model_cannot_route_its_own_data_through_a_base(tmp_path, capsys):
    value = card()  # relation original
    value["training_data"][0] |= {"license": "CC-BY-NC-4.0", "through_base": True}
    code, text = validate(capsys, write(tmp_path, value))
    assert code == 3
    assert "$.training_data[0].through_base: an original model has no base weights" in text


def test_declaring_fewer_permissions_than_computed_is_always_allowed(tmp_path, capsys):
    value = card()
    value["license"]["permissions"].update(commercial_use=False, redistribution=False, derivatives=False)
    assert validate(capsys, write(tmp_path, value))[0] == 0


# -- overrides, signing and verifying ----------------------------------------------------------------------

GPT4_OVERRIDES = [
    {
        "permission": p,
        "reason": "Separate agreement with OpenAI, 2026-11-02, permits this use.",
        "evidence_url": "https://example.org/agreement",
    }
    for p in ("commercial_use", "redistribution", "derivatives")
] + [{"permission": "output_use_restrictions", "reason": "Covered by the same agreement."}]


@pytest.fixture(scope="module")
def key():
    return generate()


@pytest.fixture(scope="module")
def root(key):
    return trust_root_from_bytes(new_root("Example Lab", [key.public], now=datetime(2026, 1, 1, tzinfo=UTC)))


def gpt4_card(overrides: list[dict[str, Any]]) -> dict[str, Any]:
    value = distilled(GPT4)
    value["license"]["overrides"] = overrides
    return value


def test_an_override_must_name_every_permission_it_exceeds(tmp_path, capsys):
    code, text = validate(capsys, write(tmp_path, gpt4_card(GPT4_OVERRIDES[:1])))
    assert code == 3
    assert "commercial_use" not in text.split("problems")[1].split("fix:")[0]  # covered
    assert "declares redistribution: true, but the computed licence terms say unknown" in text
    assert validate(capsys, write(tmp_path, gpt4_card(GPT4_OVERRIDES)))[0] == 0


def test_sign_refuses_an_uncovered_claim_and_records_an_override(tmp_path, key, root):
    with pytest.raises(SchemaError) as refused:
        sign_receipt(write(tmp_path, gpt4_card([])), [key], tmp_path / "out", issued_at=ISSUED)
    assert "declares commercial_use: true" in refused.value.diagnostics()
    assert not (tmp_path / "out" / "tiny-student@1.0.0").exists()

    bundle = sign_receipt(
        write(tmp_path, gpt4_card(GPT4_OVERRIDES)), [key], tmp_path / "out", issued_at=ISSUED
    )
    record = verify_receipt(bundle, root, now=NOW).statement.predicate.licence
    assert record is not None
    assert record.table.version == licences.LATEST_TABLE
    assert record.table.sha256 == licences.load_table(licences.LATEST_TABLE).sha256
    assert record.computed.commercial_use.verdict == "no"
    assert record.declared.commercial_use is True
    overridden = {o.permission: o for o in record.overrides}
    assert set(overridden) == {"commercial_use", "redistribution", "derivatives", "output_use_restrictions"}
    assert overridden["commercial_use"].computed == "no"
    assert overridden["commercial_use"].reason.startswith("Separate agreement with OpenAI")
    assert overridden["commercial_use"].evidence_url == "https://example.org/agreement"


def resign(bundle: Path, key: Any, edit: Any) -> None:
    """Edit the signed statement and sign it again with the publisher's own key."""
    envelope = json.loads((bundle / "receipt.json").read_bytes())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    edit(statement["predicate"])
    (bundle / "receipt.json").write_bytes(sign_envelope(PAYLOAD_TYPE, bytes(rfc8785.dumps(statement)), [key]))


def test_verify_recomputes_and_refuses_edited_terms_even_when_re_signed(tmp_path, key, root, capsys):
    path = write(tmp_path, card())
    bundle = sign_receipt(path, [key], tmp_path / "out", issued_at=ISSUED)
    report = verify_receipt(bundle, root, now=NOW)
    assert any(
        c.name == "licence" and f"recomputed with licence table v{licences.LATEST_TABLE}" in c.detail
        for c in report.checks
    )

    def looser(predicate: dict[str, Any]) -> None:
        predicate["licence"]["computed"]["attribution"] = {"verdict": "no", "reasons": ["edited"]}

    def other_table(predicate: dict[str, Any]) -> None:
        predicate["licence"]["table"]["sha256"] = "0" * 64

    def future_table(predicate: dict[str, Any]) -> None:
        predicate["licence"]["table"]["version"] = 99

    expected = {
        looser: "the signed licence computed differ from those recomputed",
        other_table: f"this receipts ships v{licences.LATEST_TABLE} as",
        future_table: "licence table version 99 is not shipped",
    }
    for edit, message in expected.items():
        fresh = sign_receipt(path, [key], tmp_path / edit.__name__, issued_at=ISSUED)
        resign(fresh, key, edit)
        with pytest.raises(VerificationError, match=message) as failed:
            verify_receipt(fresh, root, now=NOW)
        assert failed.value.check == "licence"
    # the CLI: exit 4, the check and the message named, no traceback
    trust = tmp_path / "trust.json"
    trust.write_bytes(new_root("Example Lab", [key.public], now=datetime(2026, 1, 1, tzinfo=UTC)))
    code = main(["verify", str(tmp_path / "looser" / "tiny-original@1.0.0"), "--trust-root", str(trust)])
    text = "".join(capsys.readouterr())
    assert code == 4
    assert "licence: the signed licence computed differ" in text
    assert "Traceback" not in text


def test_leaving_the_record_out_does_not_skip_the_check(tmp_path, key, root, capsys):
    value = card()
    value["training_data"][0]["license"] = "CC-BY-NC-4.0"  # computed: non-commercial
    value["license"]["permissions"].update(commercial_use=False)
    value["license"]["permissions"]["output_use_restrictions"] = ["non-commercial use only"]
    bundle = sign_receipt(write(tmp_path, value), [key], tmp_path / "out", issued_at=ISSUED)

    def claim_commercial(predicate: dict[str, Any]) -> None:
        del predicate["licence"]  # as a receipt signed before the record existed
        predicate["card"]["license"]["permissions"]["commercial_use"] = True

    resign(bundle, key, claim_commercial)
    card_text = yaml.safe_dump(
        json.loads(base64.b64decode(json.loads((bundle / "receipt.json").read_bytes())["payload"]))[
            "predicate"
        ]["card"],
        sort_keys=False,
    )
    (bundle / "card.yaml").write_text(card_text, "utf-8")
    envelope = json.loads((bundle / "receipt.json").read_bytes())
    statement = json.loads(base64.b64decode(envelope["payload"]))
    for subject in statement["subject"]:
        if subject["name"] == "card.yaml":
            subject["digest"]["sha256"] = hashlib.sha256(card_text.encode()).hexdigest()
    (bundle / "receipt.json").write_bytes(sign_envelope(PAYLOAD_TYPE, bytes(rfc8785.dumps(statement)), [key]))
    with pytest.raises(VerificationError, match="declares commercial_use: true") as failed:
        verify_receipt(bundle, root, now=NOW)
    assert failed.value.check == "licence"


def test_the_demo_cards_validate_and_gemma_carries_its_terms():
    root = Path(__file__).parents[2]
    for path in [root / "examples" / "card.yaml", *sorted((root / "examples" / "demo").glob("*.card.yaml"))]:
        assert licence_claims.licence_problems(Card.load(path)) == [], path
    gemma = licences.compute_terms(Card.load(root / "examples" / "demo" / "gemma-3-270m.card.yaml"))
    assert gemma.carried == ("LicenseRef-Gemma-Terms-of-Use",)
    assert gemma.verdict("use_restrictions") == "yes"
    # the upstream NOASSERTION data is marked through_base: noted, not made unknown
    student = licences.compute_terms(Card.load(root / "examples" / "card.yaml"))
    assert student.verdict("commercial_use") == "yes"
    assert len(student.notes) == 1


# -- properties of the combination rules ---------------------------------------------------------------

_IDS = [
    "MIT",
    "Apache-2.0",
    "CC-BY-NC-4.0",
    "NOASSERTION",
    "LicenseRef-Acme",
    "llama3.1",
    "gemma",
    "openrail",
]
_RANK = {"no": 0, "unknown": 1, "yes": 2}


def _vector(terms: licences.Terms) -> tuple[Any, ...]:
    return (dict(terms.verdicts), terms.max_monthly_active_users, terms.name_prefixes, terms.carried)


def _with_base(expression: str) -> dict[str, Any]:
    value = card()
    value["lineage"]["base"]["license"] = expression
    return value


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from(_IDS), min_size=2, max_size=4),
    st.sampled_from(licences.PERMISSIONS),
)
def test_and_is_the_meet_and_or_is_one_whole_option_never_a_mix(ids, permission):
    parts = [_RANK[licences.permits(i, permission)[0]] for i in ids]
    both = _RANK[licences.permits(" AND ".join(ids), permission)[0]]
    assert both == min(parts)
    # one permission asked alone: the option that grants it best
    assert _RANK[licences.permits(" OR ".join(ids), permission)[0]] == max(parts)
    # a card's terms under an OR are exactly those of one option, the one leaving the fewest problems
    options = [Card.parse(_with_base(i)) for i in ids]
    either = Card.parse(_with_base(" OR ".join(ids)))
    assert _vector(licences.compute_terms(either)) in [_vector(licences.compute_terms(o)) for o in options]
    assert len(licence_claims.licence_problems(either)) == min(
        len(licence_claims.licence_problems(o)) for o in options
    )
    if all(i in ("NOASSERTION", "LicenseRef-Acme") for i in ids):  # nothing known: never permitted
        assert both == _RANK["unknown"]
        assert licences.compute_terms(either).verdict(permission) == "unknown"


# -- an OR is one whole licence --------------------------------------------------------------------------

QWEN_OR_LLAMA = "LicenseRef-Qwen-Research-License OR LicenseRef-Llama-3-Community-License"
APACHE_TEACHER = {"name": "example/teacher", "weights_digest": DIGEST, "license": "Apache-2.0"}


def or_card(name: str = "tiny-student") -> dict[str, Any]:
    value = distilled(APACHE_TEACHER, base_license=QWEN_OR_LLAMA, name=name)
    value["license"]["id"] = QWEN_OR_LLAMA
    value["license"]["permissions"]["output_use_restrictions"] = ["the chosen licence's use policy"]
    return value


def test_an_or_never_mixes_the_permissions_of_two_licences(tmp_path, capsys):
    # commercial use from Llama 3, no user cap, no name prefix and no competing-model ban from Qwen Research:
    # a combination neither licence grants
    value = or_card()
    terms = terms_of(value)
    mixed = (
        terms.verdict("commercial_use") == "yes"
        and terms.max_monthly_active_users is None
        and not terms.name_prefixes
        and terms.verdict("competing_models") == "no"
    )
    assert not mixed
    qwen = terms_of(distilled(APACHE_TEACHER, base_license="LicenseRef-Qwen-Research-License"))
    llama = terms_of(distilled(APACHE_TEACHER, base_license="LicenseRef-Llama-3-Community-License"))
    assert _vector(terms) in (_vector(qwen), _vector(llama))
    assert _vector(terms) == _vector(qwen)  # fewer problems for this claim (commercial use) than Llama 3's
    assert any("lets the licensee choose one licence" in r for r in terms.reasons["commercial_use"])
    assert any("these terms are those of LicenseRef-Qwen-Research-License" in n for n in terms.notes)
    assert "no option covers the card's whole claim" in terms.notes[0]
    code, text = validate(capsys, write(tmp_path, value))
    assert code == 3
    assert "declares commercial_use: true, but the computed licence terms say no" in text

    # a claim the Llama 3 option covers whole: that option is chosen, and named in the reasons
    value = or_card(name="llama-3-tiny-student")
    value["license"]["permissions"]["user_thresholds"] = {"max_monthly_active_users": 700_000_000}
    value["license"]["id"] = "Apache-2.0 AND LicenseRef-Llama-3-Community-License"
    terms = terms_of(value)
    assert _vector(terms) == _vector(llama)
    assert (
        "LicenseRef-Llama-3-Community-License (an option that covers the card's whole claim)"
        in terms.notes[0]
    )
    code, text = validate(capsys, write(tmp_path, value))
    assert code == 0, text


def test_receipts_signed_with_table_v1_recompute_with_v1s_rules_and_still_verify(tmp_path, key, root):
    value = or_card()
    value["license"]["id"] = "Apache-2.0"
    value["license"]["permissions"]["attribution_required"] = True
    old = licences.compute_terms(Card.parse(value), licences.load_table(1))
    assert old.verdict("commercial_use") == "yes"  # v1's per-permission reading, as it was signed
    assert licence_claims.licence_problems(Card.parse(value), old) == []
    assert licence_claims.licence_problems(Card.parse(value)) != []  # refused by today's table
    value["license"]["overrides"] = [
        {"permission": p, "reason": "Separate agreement with the licensor."}
        for p in ("commercial_use", "license_id")
    ]
    bundle = sign_receipt(write(tmp_path, value), [key], tmp_path / "out", issued_at=ISSUED)

    def as_v1(predicate: dict[str, Any]) -> None:  # what sign wrote when v1 was the latest table
        predicate["licence"] = licence_claims.licence_record(Card.parse(value), licences.load_table(1))

    resign(bundle, key, as_v1)
    report = verify_receipt(bundle, root, now=NOW)
    assert any(c.name == "licence" and "recomputed with licence table v1" in c.detail for c in report.checks)


# -- teachers' outputs: the licence's terms, never "free" by default ----------------------------------------


@pytest.mark.parametrize("licence", ["CC-BY-NC-4.0", "CC-BY-NC-SA-4.0"])
def test_a_non_commercial_teacher_never_gives_a_commercial_student(tmp_path, capsys, licence):
    value = distilled({"name": "example/nc-teacher", "weights_digest": DIGEST, "license": licence})
    terms = terms_of(value)
    assert terms.verdict("commercial_use") == "no"
    assert licence in terms.reasons["commercial_use"][0]
    assert licences.load_table(licences.LATEST_TABLE).lookup(licence).outputs == "derivative"
    code, text = validate(capsys, write(tmp_path, value))
    assert code == 3
    assert "$.license.permissions.commercial_use: declares commercial_use: true" in text


def test_no_outputs_rule_in_the_latest_table_is_free_unless_the_licence_claims_nothing():
    table = licences.load_table()
    for entry in table.document.licences:
        if entry.outputs == "free":  # only licences with no condition that could reach a trained model
            assert entry.kind in ("open-source", "public-domain"), entry.id
        if entry.kind == "model-licence" or "SA" in entry.id or "NC" in entry.id:
            assert entry.outputs in ("derivative", "same-family", "unknown"), entry.id


# -- the card's own licence must carry the terms the model inherits -----------------------------------------


@pytest.mark.parametrize(
    ("base", "carried"),
    [("CC-BY-SA-4.0", "CC-BY-SA-4.0"), ("gemma", "LicenseRef-Gemma-Terms-of-Use")],
)
def test_the_cards_licence_must_include_every_carried_licence(tmp_path, capsys, key, base, carried):
    value = card()
    value["lineage"]["relation"] = "finetuned"
    value["lineage"]["base"]["license"] = base
    value["license"]["permissions"]["output_use_restrictions"] = ["the base's use policy"]
    assert value["license"]["id"] == "MIT"
    assert terms_of(value).carried == (carried,)
    path = write(tmp_path, value)
    code, text = validate(capsys, path)
    assert code == 3
    assert str(path) in text
    assert f"$.license.id: declares licence 'MIT', but the computed licence terms carry {carried}" in text
    assert "permission: license_id" in text
    with pytest.raises(SchemaError) as refused:
        sign_receipt(path, [key], tmp_path / "out", issued_at=ISSUED)
    assert f"$.license.id: declares licence 'MIT', but the computed licence terms carry {carried}" in (
        refused.value.diagnostics()
    )
    for refused in (f"MIT OR {carried}", f"{carried} WITH Classpath-exception-2.0 OR MIT"):
        value["license"]["id"] = refused  # the licensee could choose MIT alone
        assert validate(capsys, write(tmp_path, value))[0] == 3, refused
    for accepted in (carried, f"MIT AND {carried}", f"{carried} AND MIT OR {carried}"):
        value["license"]["id"] = accepted
        code, text = validate(capsys, write(tmp_path, value))
        assert code == 0, (accepted, text)
    value["license"]["id"] = "MIT"
    value["license"]["overrides"] = [{"permission": "license_id", "reason": "Relicensed by the licensor."}]
    assert validate(capsys, write(tmp_path, value))[0] == 0
    record = licence_claims.licence_record(Card.parse(value))
    assert [o["permission"] for o in record["overrides"]] == ["license_id"]


# -- closed APIs: the provider's terms bind, whatever licence the card names --------------------------------


@pytest.mark.parametrize(
    ("api", "entry"),
    [
        ("openai:gpt-4o-2024-08-06", "LicenseRef-OpenAI-Terms-of-Use"),
        ("anthropic:claude-3-5-sonnet-20241022", "LicenseRef-Anthropic-Terms"),
        ("google:gemini-1.5-pro-002", "LicenseRef-Google-Gemini-API-Terms"),
        ("gemini:gemini-2.0-flash-001", "LicenseRef-Google-Gemini-API-Terms"),
    ],
)
def test_a_closed_api_teacher_declared_permissive_is_bound_by_its_providers_terms(
    tmp_path, capsys, api, entry
):
    teacher = {
        "name": "closed",
        "api_identifier": api,
        "license": "MIT",
        "terms_restrict_distillation": False,
    }
    value = distilled(teacher)
    terms = terms_of(value)
    assert terms.verdict("commercial_use") == "no"
    assert terms.verdict("competing_models") == "yes"
    assert any(entry in r for r in terms.reasons["commercial_use"])
    assert any(f"the card names its licence 'MIT', but its api_identifier ({api})" in n for n in terms.notes)
    assert any("the card says its terms do not restrict distillation" in n for n in terms.notes)
    code, text = validate(capsys, write(tmp_path, value))
    assert code == 3
    assert "declares commercial_use: true, but the computed licence terms say no" in text


def test_an_unknown_api_provider_under_a_non_api_licence_is_unknown():
    teacher = {
        "name": "closed",
        "api_identifier": "acme:big-model-2026",
        "license": "MIT",
        "terms_restrict_distillation": False,
    }
    terms = terms_of(distilled(teacher))
    assert {terms.verdict(k) for k in licences.PERMISSIONS} == {"unknown"}
    assert "a provider not in the licence table" in terms.reasons["commercial_use"][0]
    # an unknown provider under API terms the table knows: those terms bind
    teacher["license"] = "LicenseRef-OpenAI-Terms-of-Use"
    assert terms_of(distilled(teacher)).verdict("commercial_use") == "no"
