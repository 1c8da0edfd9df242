"""Everyday forms of sensitive values (issue 12, item 4): detection reads a normalised copy
of each text and every finding maps back to the characters the client sent."""

from __future__ import annotations

import pytest

from laneway.governance import Scanner
from laneway.governance._normalize import normalize
from laneway.governance._redact import redact_request
from laneway.providers import ChatRequest
from laneway.settings._policies import SensitivePolicy

ZWSP, SHY, NBSP = "\u200b", "\u00ad", "\u00a0"


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(SensitivePolicy())


def _fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def _digits(text: str, zero: int) -> str:
    return "".join(chr(zero + int(c)) if c.isdigit() else c for c in text)


# (text, kind, the original characters the finding must cover)
CASES = [
    ("My SSN is 536-22-8417.", "national_id", "536-22-8417"),
    ("SSN: 536-22-8417; thanks", "national_id", "536-22-8417"),
    ("Her SIN (498 259 795).", "national_id", "498 259 795"),
    ("My Aadhaar is 2341 2341 2346.", "national_id", "2341 2341 2346"),
    ("My SSN is " + _fullwidth("536-22-8417") + "。", "national_id", _fullwidth("536-22-8417")),
    (
        "My SSN is " + _digits("536-22-8417", 0x660) + ".",
        "national_id",
        _digits("536-22-8417", 0x660),
    ),
    ("SSN " + _digits("536-22-8417", 0x966), "national_id", _digits("536-22-8417", 0x966)),
    ("SSN 536\u201322\u20138417 (en dashes)", "national_id", "536\u201322\u20138417"),
    (f"write to ali{ZWSP}ce@exam{ZWSP}ple.com today", "email", f"ali{ZWSP}ce@exam{ZWSP}ple.com"),
    (f"write to ali{SHY}ce@example.com", "email", f"ali{SHY}ce@example.com"),
    ("login?user=alice%40example.com&x=1", "email", "alice%40example.com"),
    ("mail " + _fullwidth("alice@example.com"), "email", _fullwidth("alice@example.com")),
    ("alice\uff20example.com is mine", "email", "alice\uff20example.com"),
    ("Card 4111.1111.1111.1111, exp 09/27", "payment_card", "4111.1111.1111.1111"),
    ("Card 4111 1111 1111 1111.", "payment_card", "4111 1111 1111 1111"),
    (
        f"Card 4111{NBSP}1111{NBSP}1111{NBSP}1111",
        "payment_card",
        f"4111{NBSP}1111{NBSP}1111{NBSP}1111",
    ),
    (f"Card 41111111{ZWSP}11111111 please", "payment_card", f"41111111{ZWSP}11111111"),
    (f"Card 4111{SHY}1111{SHY}1111{SHY}1111", "payment_card", f"4111{SHY}1111{SHY}1111{SHY}1111"),
    ("カード番号は4111111111111111です。", "payment_card", "4111111111111111"),
    ("iban: de89370400440532013000.", "iban", "de89370400440532013000"),
    ("IBAN de89 3704 0044 0532 0130 00", "iban", "de89 3704 0044 0532 0130 00"),
    ("口座DE89370400440532013000へ", "iban", "DE89370400440532013000"),
    ("Call +" + _fullwidth("1 415 555 2671"), "phone", "+" + _fullwidth("1 415 555 2671")),
    ("电话：+86 138 0013 8000", "phone", "+86 138 0013 8000"),
    ('{"name": "Ana", "date_of_birth": "1990-04-12"}', "date_of_birth", "1990-04-12"),
]


@pytest.mark.parametrize(("text", "kind", "covered"), CASES)
def test_everyday_forms_are_found_on_the_original_characters(
    scanner: Scanner, text: str, kind: str, covered: str
) -> None:
    findings = scanner.scan_text(text)
    spans = {(f.kind, text[f.start : f.end]) for f in findings}
    assert (kind, covered) in spans, spans


@pytest.mark.parametrize(("text", "kind", "covered"), CASES)
def test_redaction_replaces_the_original_characters(
    scanner: Scanner, text: str, kind: str, covered: str
) -> None:
    request = ChatRequest(model="m", messages=({"role": "user", "content": text},))
    redacted, redaction = redact_request(request, scanner)
    sent = str(redacted.messages[0]["content"])
    assert covered not in sent
    assert f"[{kind.upper()}_1]" in sent
    assert redaction.errors == ()
    assert redaction.restore(sent) == text


def test_ascii_text_without_escapes_is_not_copied() -> None:
    text = "Plain ASCII prose, 50% off, order #1234."
    copy, offsets = normalize(text)
    assert copy is text and offsets is None
    other = "Привет, мир, 東京"  # letters of other scripts, nothing to change
    copy, offsets = normalize(other)
    assert copy is other and offsets is None


def test_the_normalised_copy_and_its_offsets() -> None:
    text = f"a{ZWSP}b %41%42 ５ ﬁx \u0663"
    copy, offsets = normalize(text)
    assert copy == "ab AB 5 fix 3"
    assert offsets is not None
    assert offsets.original(0, 2) == (0, 3)  # "ab" covers the zero-width space
    assert offsets.original(3, 5) == (4, 10)  # "AB" is the whole escape run
    assert offsets.original(6, 7) == (11, 12)
    assert offsets.original(8, 10) == (13, 14)  # "fi" expands one ligature
    assert offsets.original(12, 13) == (16, 17)
    assert normalize(ZWSP * 3) == ("", None)


def test_clean_look_alikes_stay_clean(scanner: Scanner) -> None:
    for text in (
        "Version 536-22-8417.5 of the schema",  # a dotted tail: part of a longer token
        "Rechnung Nr. 2024-013587 vom 2023-08-28",
        "DHL Sendungsnummer: 1211305969",
        "Facture n° 2020-385463 — échéance 2019-08-28.",
        "build 4111.1111.1111.1112 failed",  # not Luhn-valid
        "release de89-final",
    ):
        assert scanner.scan_text(text) == [], text


@pytest.mark.parametrize("seed", range(30))
def test_every_span_of_the_copy_maps_to_original_characters_that_give_it(seed: int) -> None:
    import random

    rng = random.Random(seed)
    alphabet = ["a", "7", " ", "-", "@", ".", "%40", "%E2%82%AC", ZWSP, SHY, "\ufeff", "ﬁ",
                "½", "５", "٣", "–", "\u00a0", "é", "東", "%", "%4"]  # fmt: skip
    text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
    copy, offsets = normalize(text)
    if offsets is None:
        assert len(copy) == len(text)
        return
    for start in range(len(copy)):
        for end in range(start + 1, min(len(copy), start + 6) + 1):
            first, last = offsets.original(start, end)
            assert 0 <= first < last <= len(text)
            assert copy[start:end] in normalize(text[first:last])[0], (text, start, end)


def test_a_text_of_endless_escapes_fails_closed(scanner: Scanner) -> None:
    from laneway.governance._normalize import MAX_EXPANSIONS

    text = "%41%42 " * (MAX_EXPANSIONS + 1)
    request = ChatRequest(model="m", messages=({"role": "user", "content": text},))
    result = scanner.scan_request(request)
    assert result.sensitive and result.errors == ("normalize",)
    _, redaction = redact_request(request, scanner)
    assert "normalize" in redaction.errors
