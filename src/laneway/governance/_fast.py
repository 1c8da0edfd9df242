"""The fast default detectors: compiled regular expressions plus structure / check-digit rules.

Each ``*_finder()`` compiles its patterns once and returns a pure function
``text -> list[(start, end)]``. Every finder starts with a cheap prefilter (a byte that
must be present, a literal prefix) so that ordinary prose costs a few microseconds.

Decisions worth knowing (documented in the tests too):

* phone numbers need structure: a leading ``+`` / ``00`` (8–15 digits), a trunk ``0``
  (9–12 digits) or separated groups of 10–11 digits; a bare run of digits counts only
  right after a phone word (``tel``, ``call``, ``mobile`` …). Lists of single digits,
  ISBN-like groups ending in one digit, IPv4-shaped dotted quads and numbers right after
  ``order``/``invoice``/``ISBN``/``#`` are not phones. The ``x123`` extension is left out.
* IPv4 ``0.0.0.0``, ``255.255.255.255`` and dotted quads right after ``version``/``v``/
  ``release``/``build`` are not flagged; private ranges are (they map a network).
* national IDs in their usual punctuated form are flagged anywhere; the bare-digit form of
  SSN / SIN / Aadhaar / CPF only right after their name (``SSN``, ``SIN``, ``Aadhaar`` …).
* the finders read the scanner's normalised copy (ASCII digits, ``-`` for every dash, no
  zero-width characters: see ``_normalize``). A number followed by sentence punctuation is
  whole (``536-22-8417.``); a ``.`` or ``-`` joining it to another digit or letter is not.
  Letters of scripts written without spaces (Chinese, Japanese, Thai) do not glue to a
  number (``カード番号は4111…です``). Cards may be grouped with spaces, dashes or dots (one
  kind per number); IBANs are found in any case.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Protocol

from laneway.governance import _validators as v

__all__ = ["ALL", "DOB_WINDOWS", "FAST_FINDERS", "Finder", "Span", "secret_finder"]

Span = tuple[int, int]
ALL = 1 << 62  # "no limit" for a finder's ``limit``
DOB_WINDOWS = 2000  # most birth-word windows (with digits) the DOB finder examines per text


class Finder(Protocol):
    """``text -> spans``; stops after ``limit`` spans (the scanner caps the hits it
    collects per kind on large requests: past the cap the request is sensitive anyway)."""

    def __call__(self, text: str, limit: int = ..., /) -> list[Span]: ...


_MONTHS = (
    "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    "sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|"
    "januar|februar|märz|mai|juni|juli|oktober|dezember|"
    "janvier|février|mars|avril|juin|juillet|août|septembre|octobre|novembre|décembre|"
    "enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|"
    "diciembre|gennaio|febbraio|aprile|maggio|giugno|luglio|settembre|ottobre|dicembre|"
    "januari|februari|maart|mei|augustus|janeiro|fevereiro|março|maio|junho|julho|"
    "setembro|outubro|novembro|dezembro"
)


def email_finder() -> Finder:
    local = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}$")
    domain = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}\.)+[A-Za-z]{2,24}(?![A-Za-z0-9_-])")

    def find(text: str, limit: int = ALL) -> list[Span]:
        spans: list[Span] = []
        at, previous = text.find("@"), -1
        while at != -1 and len(spans) < limit:
            # a local part holds no '@': searching from after the previous one keeps
            # "a@a@a@…" linear (1.5 s of CPU per MB when every '@' searched 64 characters)
            lm = local.search(text, max(0, at - 64, previous + 1), at)
            dm = domain.match(text, at + 1) if lm else None
            if lm and dm:
                start = lm.start()
                while start < at and text[start] in "._%+-":
                    start += 1
                spans.append((start, dm.end()))
            at, previous = text.find("@", at + 1), at
        return spans

    return find


def phone_finder() -> Finder:
    cand = re.compile(r"[+(0-9][0-9 ().\-]{5,26}[0-9]")
    sep = re.compile(r"[ ().\-]+")
    ipv4_shape = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")
    date_shape = re.compile(r"\d{1,4}[./-]\d{1,2}[./-]\d{1,4}")
    phone_word = re.compile(
        r"(?i)(?:phone|tel|telephone|call|mobile|cell|whatsapp|fax|sms|text me|reach me|"
        r"number|nummer|numéro|número|numero|téléphone|telefon|telefono|teléfono|handy)"
        r"\W{0,12}(?:\w+\W{1,3}){0,3}$"
    )
    not_phone = re.compile(
        r"(?i)(?:isbn(?:-1[03])?|order|invoice|ticket|tracking|ref|sku|serial|version|build|"
        r"account|iban|card|ssn|sin|aadhaa?r|cpf|id|(?:sendungs|bestell|auftrags|rechnungs|"
        r"kunden|artikel)nummer|bestellung|rechnung|commande|facture|suivi|pedido|factura|"
        r"seguimiento)\W{0,6}(?:no\.?|n°|nr\.?|number|#)?\W{0,4}$"
    )

    def find(text: str, limit: int = ALL) -> list[Span]:
        spans: list[Span] = []
        for m in cand.finditer(text):
            raw = m.group()
            start, end = m.start(), m.end()
            if start and (_wordy(text[start - 1]) or text[start - 1] in ".+/#$€£¥-"):
                continue
            if raw[0] == "(" and not raw[1].isdigit():
                continue
            if (
                _phone_shape(raw, sep, ipv4_shape, date_shape)
                or (
                    raw.isdigit()
                    and 8 <= len(raw) <= 12
                    and phone_word.search(text, max(0, start - 40), start)
                )
            ) and not _not_phone(text, max(0, start - 24), start, not_phone):
                spans.append((start, end))
                if len(spans) >= limit:
                    break
        return spans

    return find


# every word the ``not_phone`` pattern names: a window holding none of them needs no regex
_NOT_PHONE_WORDS = ("isbn", "order", "invoice", "ticket", "tracking", "ref", "sku", "serial",
                    "version", "build", "account", "iban", "card", "ssn", "sin", "aadha", "cpf",
                    "id", "nummer", "bestellung", "rechnung", "commande", "facture", "suivi",
                    "pedido", "factura", "seguimiento")  # fmt: skip


def _not_phone(text: str, start: int, end: int, pattern: re.Pattern[str]) -> bool:
    window = text[start:end].lower()
    for word in _NOT_PHONE_WORDS:
        if word in window:
            return pattern.search(text, start, end) is not None
    return False


def _phone_shape(
    raw: str, sep: re.Pattern[str], ipv4_shape: re.Pattern[str], date_shape: re.Pattern[str]
) -> bool:
    compact = raw.replace("(0)", "")
    ndigits = sum(c.isdigit() for c in compact)
    separated = not raw.isdigit() and not raw.lstrip("+").isdigit()
    if ipv4_shape.fullmatch(raw) or date_shape.fullmatch(raw):
        return False
    groups = [g for g in sep.split(compact.lstrip("+")) if g]
    if len(groups) > 6 or sum(len(g) == 1 for g in groups) > 1 or len(groups[-1]) < 2:
        return False
    if len(groups) == 2 and len(groups[0]) == 4 and groups[0][:2] in ("19", "20"):
        return raw.startswith("+")  # 2024-013587: a year-prefixed document number
    if raw.startswith("+"):
        return 8 <= ndigits <= 15
    digits = v.digits_of(compact)
    if digits.startswith("00"):
        return separated and 10 <= ndigits <= 15
    if digits.startswith("0"):
        return 9 <= ndigits <= 12 and (separated or ndigits in (10, 11))
    return separated and 10 <= ndigits <= 11


# (IIN prefix pattern, shortest, longest) for the networks Laneway recognises.
_NETWORKS = (
    (r"4", (13, 16, 19)),  # Visa
    (r"5[1-5]|2(?:2[2-9]|[3-6]\d|7[01]|720)", (16,)),  # Mastercard
    (r"3[47]", (15,)),  # American Express
    (r"3(?:0[0-5]|[689])", (14, 15, 16, 17, 18, 19)),  # Diners Club
    (r"6(?:011|5|4[4-9])|622", (16, 17, 18, 19)),  # Discover / UnionPay co-brand
    (r"62|220[0-4]", (16, 17, 18, 19)),  # UnionPay, Mir
    (r"35", (16, 17, 18, 19)),  # JCB (issued 3528-3589; Faker and some issuers use 35xx)
    (r"2131|1800", (15,)),  # JCB 15
    (r"50(?:18|20|38)|5893|5[6-8]|6304|6759|676[1-3]|0604|6390", tuple(range(12, 20))),  # Maestro
)


def _isolated(text: str, start: int, end: int, extra: str = "-") -> bool:
    """No word character glued to either side of ``text[start:end]``, nor one of
    ``extra`` that joins it to a word character beyond (``536-22-8417.5`` is part of a
    longer token; the full stop of ``My SSN is 536-22-8417.`` ends a sentence)."""
    before = text[start - 1] if start else " "
    after = text[end] if end < len(text) else " "
    if _wordy(before) or _wordy(after):
        return False
    if before in extra and start >= 2 and _wordy(text[start - 2]):
        return False
    return not (after in extra and end + 1 < len(text) and _wordy(text[end + 1]))


def _wordy(ch: str) -> bool:
    """A character that glues to a number: a digit, ``_`` or a letter of an alphabet
    written with spaces between words (Latin, Greek, Cyrillic). Chinese, Japanese or
    Thai text runs on without spaces: ``カード番号は4111…です`` holds a separate number."""
    return ch == "_" or (ch.isalnum() and ch < "\u0530")


def card_finder() -> Finder:
    cand = re.compile(r"[0-9](?:[ .-]?[0-9]){11,18}")
    group = re.compile(r"[0-9]+")
    networks = [(re.compile(p), lengths) for p, lengths in _NETWORKS]
    not_card = re.compile(
        r"(?i)(?:ean|gtin|upc|barcode|isbn(?:-1[03])?|order|tracking|invoice|ref)\W{0,6}"
        r"(?:no\.?|number|#)?\W{0,4}$"
    )

    def card(text: str, start: int, end: int) -> bool:
        raw = text[start:end]
        if (" " in raw) + ("-" in raw) + ("." in raw) > 1 or not _isolated(text, start, end, "-."):
            return False
        digits = v.digits_of(raw)
        if not any(p.match(digits) and len(digits) in n for p, n in networks):
            return False
        return v.luhn_valid(digits) and not not_card.search(text, max(0, start - 24), start)

    def regroup(text: str, start: int, end: int) -> tuple[Span | None, int]:
        """The greedy candidate failed: a card may end before its last groups
        (``4111111111111111 12/27``, two cards one space apart) or start after a short
        first group (``5 4111…``). Returns a card found, and where to search next."""
        if start and (_wordy(text[start - 1]) or text[start - 1] == "-"):
            return None, end  # glued to a word (an IBAN's check digits): as before
        first = group.match(text, start, end)
        if first is None:
            return None, end
        if first.end() - start < 4:
            second = group.search(text, first.end(), end)
            if second is not None and second.end() - second.start() >= 4:
                return None, second.start()
            return None, end
        groups = [(s, e, e - s) for s, e in (m.span() for m in group.finditer(text, start, end))]
        count = sum(n for _, _, n in groups)
        for j in range(len(groups) - 1, 0, -1):
            count -= groups[j][2]
            stop = groups[j - 1][1]
            if count < 13:
                break
            if _card_layout([n for _, _, n in groups[:j]]) and card(text, start, stop):
                return (start, stop), stop
        return None, end

    def find(text: str, limit: int = ALL) -> list[Span]:
        spans: list[Span] = []
        pos = 0
        while len(spans) < limit and (m := cand.search(text, pos)):
            start, pos = m.span()
            if card(text, start, pos):
                spans.append((start, pos))
                continue
            if " " in m.group() or "-" in m.group() or "." in m.group():
                found, pos = regroup(text, start, pos)
                if found is not None:
                    spans.append(found)
        return spans

    return find


def _card_layout(groups: list[int]) -> bool:
    """How card numbers are printed: one run of 12-19 digits, groups of four (the last
    may be shorter), or 4-6-5 / 4-6-4 (American Express, Diners Club)."""
    if len(groups) == 1:
        return 12 <= groups[0] <= 19
    if groups[:2] == [4, 6] and len(groups) == 3:
        return groups[2] in (4, 5)
    return all(n == 4 for n in groups[:-1]) and 1 <= groups[-1] <= 4


def iban_finder() -> Finder:
    # any case (de89 3704 …); explicit classes: the IGNORECASE flag costs ~50% here
    cand = re.compile(r"(?<![A-Za-z0-9_])[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,30}")

    def find(text: str, limit: int = ALL) -> list[Span]:
        spans: list[Span] = []
        pos = 0
        while len(spans) < limit and (m := cand.search(text, pos)):
            raw = m.group()
            pos = m.end()
            length = v.IBAN_LENGTHS.get(raw[:2].upper())
            if length is None:
                continue
            taken, end = 0, m.start()
            for i, ch in enumerate(raw):
                if ch != " ":
                    taken += 1
                if taken == length:
                    end = m.start() + i + 1
                    break
            if taken != length or (end < len(text) and _wordy(text[end])):
                continue
            if v.iban_valid(text[m.start() : end]):
                spans.append((m.start(), end))
                pos = end  # the greedy candidate may have run into the next IBAN
        return spans

    return find


def ip_finder() -> Finder:
    octet = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    ipv4 = re.compile(r"[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}\.[0-9]{1,3}")
    valid4 = re.compile(rf"{octet}(?:\.{octet}){{3}}")
    ipv6 = re.compile(
        r"(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:]{3,39}(?![\w:])"
    )
    version = re.compile(r"(?i)(?:version|ver\.?|v|rv:|release|build|firmware|rev|[a-z]/)\s*$")

    def find(text: str, limit: int = ALL) -> list[Span]:
        spans: list[Span] = []
        if text.count(".") >= 3:
            for m in ipv4.finditer(text):
                start, end = m.span()
                glued = text[end : end + 2]
                if (
                    not valid4.fullmatch(m.group())
                    or (start and (_wordy(text[start - 1]) or text[start - 1] == "."))
                    or (glued[:1] and _wordy(glued[0]))
                    or (glued[:1] == "." and glued[1:].isdigit())
                ):
                    continue
                if m.group() in ("0.0.0.0", "255.255.255.255"):  # noqa: S104 (not a bind)
                    continue
                if version.search(text, max(0, m.start() - 12), m.start()):
                    continue
                spans.append(m.span())
                if len(spans) >= limit:
                    return spans
        if text.count(":") >= 2:
            for m in ipv6.finditer(text):
                try:
                    addr = ipaddress.IPv6Address(m.group())
                except ValueError:
                    continue
                if not addr.is_unspecified and not addr.is_loopback:
                    spans.append(m.span())
                    if len(spans) >= limit:
                        break
        return spans

    return find


def national_id_finder() -> Finder:
    # One pass for the digit-led shapes, one for the letter-led ones (speed: each full-text
    # regex pass costs ~10 µs per 500 B, so shapes share a pass and dispatch on the group).
    digit_led = re.compile(
        r"[0-9](?:(?P<ssn>[0-9]{2}(?P<s1>[- ])[0-9]{2}(?P=s1)[0-9]{4})"
        r"|(?P<sin>[0-9]{2}(?P<s2>[- ])[0-9]{3}(?P=s2)[0-9]{3})"
        r"|(?P<aadhaar>[0-9]{3}(?P<s3>[ -])[0-9]{4}(?P=s3)[0-9]{4})"
        r"|(?P<cpf>[0-9]{2}\.[0-9]{3}\.[0-9]{3}-[0-9]{2})"
        r"|(?P<nir> ?[0-9]{2} ?[0-9]{2} ?(?:[0-9]{2}|2[AB]) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2})"
        r"|(?P<dni>[0-9]{7}-?[A-Z])"
        r"|(?P<bare>[0-9]{8,11}))"
    )
    letter_led = re.compile(
        r"[A-Z](?:(?P<nino>[A-Z] ?\d{2} ?\d{2} ?\d{2} ?[A-D])|(?P<nie>-?\d{7}-?[A-Z]))"
    )
    checks: dict[str, Callable[[str], bool]] = {
        "ssn": v.ssn_valid,
        "sin": lambda s: s[0] not in "08" and v.luhn_valid(s),
        "aadhaar": v.aadhaar_valid,
        "cpf": v.cpf_valid,
        "nir": v.nir_valid,
        "dni": v.dni_valid,
        "nino": v.nino_valid,
        "nie": v.nie_valid,
    }
    named = re.compile(
        r"(?i)(?:ssn|social security|\bsin\b|social insurance|aadhaa?r|uidai|cpf|identity|"
        r"identification|national id|id document|document|tax id)\W{0,20}(?:\w+\W{1,3}){0,3}$"
    )
    by_length: dict[int, tuple[Callable[[str], bool], ...]] = {
        9: (v.ssn_valid, v.luhn_valid),
        11: (v.cpf_valid,),
        12: (v.aadhaar_valid,),
    }

    shapes = (*checks, "bare")

    def bare_ok(text: str, start: int, value: str) -> bool:
        valid = by_length.get(len(value), ())
        return any(f(value) for f in valid) and bool(named.search(text, max(0, start - 48), start))

    def find(text: str, limit: int = ALL) -> list[Span]:
        spans: list[Span] = []
        for pattern, extra in ((digit_led, "-."), (letter_led, "")):
            for m in pattern.finditer(text):
                start, end = m.span()
                found = m.groupdict()
                shape = next((g for g in shapes if found.get(g)), None)
                if shape is None or not _isolated(text, start, end, extra):
                    continue
                value = m.group()
                if bare_ok(text, start, value) if shape == "bare" else checks[shape](value):
                    spans.append((start, end))
                    if len(spans) >= limit:
                        return spans
        return spans

    return find


def dob_finder() -> Finder:
    context = re.compile(
        r"(?i)\b(?:d\.?o\.?b\.?|date[ _]of[ _]birth|birth[ _]?date|birthday|born(?: on| in)?|"
        r"geboren(?: am)?|geburtsdatum|geburtstag|née? le|date de naissance|"
        r"fecha de nacimiento|nacid[oa] el|data di nascita|nat[oa] il|geboortedatum|"
        r"data de nascimento|nascid[oa] em|生年月日)"
    )
    date = re.compile(
        r"(?i)(?<!\d)(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}|\d{1,2}[-/.]\d{1,2}[-/.](?:\d{4}|\d{2})"
        rf"|\d{{1,2}}(?:st|nd|rd|th|er)?\.?\s(?:of\s|de\s)?(?:{_MONTHS})\.?,?\s(?:de\s)?\d{{4}}"
        rf"|(?:{_MONTHS})\.?\s\d{{1,2}}(?:st|nd|rd|th)?,?\s\d{{4}}"
        r"|\d{4}年\d{1,2}月\d{1,2}日)(?!\d)"
    )

    words = ("dob", "d.o.b", "birth", "born", "gebor", "geburt", "né", "naissance", "nacid",
             "nacimiento", "nascit", "nato", "nata", "geboorte", "nascid", "生年月日")  # fmt: skip
    # Every date shape above has at least four digits: a window without them cannot hold
    # one (a cheap, exact pre-check; the date pattern costs ~100 µs per 48-char window).
    four_digits = re.compile(r"(?:\D*+\d){4}")

    def find(text: str, limit: int = ALL) -> list[Span]:
        spans: list[Span] = []
        lowered = text.lower()
        if not any(w in lowered for w in words):
            return spans
        budget = DOB_WINDOWS
        for kw in context.finditer(text):
            start, stop = kw.span()
            if four_digits.match(text, stop, min(len(text), stop + 48)):
                budget -= 1
                after = date.search(text, stop, min(len(text), stop + 48))
                if after:
                    spans.append(after.span())
                    if len(spans) >= limit:
                        break
                    continue
            if four_digits.match(text, max(0, start - 32), start):
                budget -= 1
                spans.extend(m.span() for m in date.finditer(text, max(0, start - 32), start))
            if budget < 0:  # fail closed: the scanner records the error, text is sensitive
                raise RuntimeError(f"more than {DOB_WINDOWS} birth-word windows in one text")
        return spans[:limit]

    return find


_KEY_SHAPES = (
    r"sk-ant-[A-Za-z0-9_\-]{20,}"
    r"|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}"
    r"|(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255}"
    r"|xox[abposr]-[A-Za-z0-9\-]{10,}"
    r"|AIza[0-9A-Za-z_\-]{35}"
    r"|[sr]k_(?:live|test)_[0-9A-Za-z]{24,}"
    r"|(?:gsk|hf)_[A-Za-z0-9]{20,}|xai-[A-Za-z0-9]{20,}"  # Groq, Hugging Face, xAI
)
# rarer vendor shapes, only looked for in upstream error messages (see secret_finder)
_MORE_KEY_SHAPES = r"|(?:r8|fw)_[A-Za-z0-9]{20,}|(?:pplx|nvapi|csk)-[A-Za-z0-9_\-]{20,}"
_AWS_PATTERN = r"(?i)aws.{0,20}secret.{0,20}?[\s\"':=]{1,6}([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"


def api_key_finder() -> Finder:
    keys = re.compile(rf"(?<![A-Za-z0-9_-])(?:{_KEY_SHAPES})(?![A-Za-z0-9_-])")
    aws_secret = re.compile(_AWS_PATTERN)

    def find(text: str, limit: int = ALL) -> list[Span]:
        spans: list[Span] = []
        if (  # the literal prefixes of the shapes above, inline: no generator per call
            "sk-" in text or "IA" in text or "ACCA" in text or "gh" in text
            or "github_pat_" in text or "xox" in text or "AIza" in text or "k_" in text
            or "hf_" in text or "xai-" in text
        ):  # fmt: skip
            for m in keys.finditer(text):
                if _key_like(m.group()):
                    spans.append(m.span())
                    if len(spans) >= limit:
                        return spans
        if "ecret" in text or "ECRET" in text:
            spans.extend(m.span(1) for m in aws_secret.finditer(text))
        return spans[:limit]

    return find


def secret_finder() -> Finder:
    """Every key shape :func:`api_key_finder` knows, rarer vendor prefixes, and a long
    random-looking token (digits and letters, 32+ characters: hex or base62 keys) right
    after a key word (``key: 9f86d0…``, ``Bearer AbC…``, ``tk …``). For short texts where a
    leaked credential is the worry (upstream error messages): no cheap prefilter, so it
    is not on the per-request scan path."""
    keys = re.compile(rf"(?<![A-Za-z0-9_-])(?:{_KEY_SHAPES}{_MORE_KEY_SHAPES})(?![A-Za-z0-9_-])")
    aws_secret = re.compile(_AWS_PATTERN)
    after_word = re.compile(
        r"(?i)(?<![a-z0-9])(?:api[_-]?key|apikey|access[_-]?key|secret(?:[_-]?key)?|token|tk|"
        r"key|bearer|password|passwd|credentials?|auth(?:orization)?)[^\w\n]{1,6}+"
        r"([A-Za-z0-9][A-Za-z0-9_\-]{31,}+)(?![A-Za-z0-9_-])"
    )

    def find(text: str, limit: int = ALL) -> list[Span]:
        spans = [m.span() for m in keys.finditer(text) if _key_like(m.group())]
        spans.extend(m.span(1) for m in aws_secret.finditer(text))
        taken = {start for start, _ in spans}
        spans.extend(
            m.span(1)
            for m in after_word.finditer(text)
            if _mixed(m.group(1)) and m.start(1) not in taken
        )
        return spans[:limit]

    return find


def _mixed(token: str) -> bool:
    """Both a digit and a letter: random keys have both, words and numbers do not."""
    return any(c.isdigit() for c in token) and any(c.isalpha() for c in token)


def _key_like(token: str) -> bool:
    """``sk-`` also starts words (``sk-learn``): such a token counts when it has digits
    and letters, or a 12+ character run with a capital (``sk-svc-secret-AAAABBBBCCCCDDDD``)."""
    if not token.startswith("sk-"):
        return True
    rest = token[3:]
    if _mixed(rest):
        return True
    return any(len(part) >= 12 and not part.islower() for part in rest.replace("_", "-").split("-"))


def jwt_finder() -> Finder:
    token = re.compile(
        r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{2,}\.[A-Za-z0-9_\-]*"
    )

    def find(text: str, limit: int = ALL) -> list[Span]:
        if "eyJ" not in text:
            return []
        spans = [m.span() for m in token.finditer(text) if v.jwt_header_valid(m.group())]
        return spans[:limit]

    return find


def private_key_finder() -> Finder:
    begin = re.compile(r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")
    end = re.compile(r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----")

    def find(text: str, limit: int = ALL) -> list[Span]:
        spans: list[Span] = []
        if "-----BEGIN" not in text:
            return spans
        pos = 0
        while len(spans) < limit and (m := begin.search(text, pos)):
            e = end.search(text, m.end())
            stop = e.end() if e else len(text)  # a truncated block is still a secret
            spans.append((m.start(), stop))
            pos = stop
        return spans

    return find


# (kind, finder factory); earlier entries win when spans of two kinds overlap.
FAST_FINDERS: tuple[tuple[str, Callable[[], Finder]], ...] = (
    ("private_key", private_key_finder),
    ("jwt", jwt_finder),
    ("api_key", api_key_finder),
    ("iban", iban_finder),
    ("payment_card", card_finder),
    ("national_id", national_id_finder),
    ("email", email_finder),
    ("ip_address", ip_finder),
    ("date_of_birth", dob_finder),
    ("phone", phone_finder),
)
