"""Check-digit and structure validators used by the sensitive-data detectors.

Every function takes the matched text (separators allowed where noted) and returns a bool;
none of them raises on malformed input.
"""

from __future__ import annotations

import base64
import binascii
import json

__all__ = [
    "IBAN_LENGTHS",
    "aadhaar_valid",
    "cpf_valid",
    "digits_of",
    "dni_valid",
    "iban_valid",
    "jwt_header_valid",
    "luhn_valid",
    "mod97_valid",
    "nie_valid",
    "nino_valid",
    "nir_valid",
    "ssn_valid",
]

# ISO 13616 registry: country code -> total IBAN length.
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22,
    "BH": 22, "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24,
    "DE": 22, "DJ": 27, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18,
    "FK": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27,
    "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MN": 20, "MR": 27,
    "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23, "PK": 24, "PL": 28,
    "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24, "SC": 31,
    "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip

_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6), (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8), (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2), (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4), (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)  # fmt: skip
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9), (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2), (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0), (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5), (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)  # fmt: skip
_DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
_NINO_BAD_PREFIX = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def digits_of(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def luhn_valid(number: str) -> bool:
    """Luhn over the digits of ``number`` (separators ignored)."""
    digits = digits_of(number)
    if len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def mod97_valid(value: str) -> bool:
    """ISO 7064 mod 97-10 as used by IBANs: move 4 chars to the end, letters -> 10..35."""
    compact = "".join(value.split()).replace("-", "").upper()
    if len(compact) < 5 or not compact.isalnum() or not compact.isascii():
        return False
    rearranged = compact[4:] + compact[:4]
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    return int(numeric) % 97 == 1


def iban_valid(value: str) -> bool:
    compact = "".join(value.split()).upper()
    expected = IBAN_LENGTHS.get(compact[:2])
    return expected is not None and len(compact) == expected and mod97_valid(compact)


def ssn_valid(value: str) -> bool:
    """US SSN allocation rules: area not 000/666/9xx, group not 00, serial not 0000."""
    d = digits_of(value)
    if len(d) != 9:
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return d not in ("078051120", "219099999", "123456789")  # advertised / sample numbers


def nino_valid(value: str) -> bool:
    """UK National Insurance number prefix rules (HMRC): no D F I Q U V, O not second."""
    compact = "".join(value.split()).upper()
    if len(compact) != 9:
        return False
    first, second = compact[0], compact[1]
    if first in "DFIQUV" or second in "DFIOQUV" or compact[:2] in _NINO_BAD_PREFIX:
        return False
    return compact[2:8].isdigit() and compact[8] in "ABCD"


def aadhaar_valid(value: str) -> bool:
    """Indian Aadhaar: 12 digits, first 2-9, Verhoeff check digit."""
    d = digits_of(value)
    if len(d) != 12 or d[0] in "01":
        return False
    check = 0
    for i, ch in enumerate(reversed(d)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][ord(ch) - 48]]
    return check == 0


def nir_valid(value: str) -> bool:
    """French NIR (numéro de sécurité sociale): 13 digits + 2-digit key = 97 - n mod 97."""
    compact = "".join(value.split()).upper()
    if len(compact) != 15 or compact[0] not in "123478":
        return False
    body, key = compact[:13], compact[13:]
    month = body[3:5]
    if not month.isdigit() or not (1 <= int(month) <= 12 or 20 <= int(month) <= 99):
        return False
    # Corsica: department 2A / 2B are replaced by 19 / 18 for the key computation.
    body = body.replace("2A", "19", 1) if body[5:7] == "2A" else body
    body = body.replace("2B", "18", 1) if body[5:7] == "2B" else body
    if not body.isdigit() or not key.isdigit():
        return False
    return 97 - int(body) % 97 == int(key)


def dni_valid(value: str) -> bool:
    """Spanish DNI/NIF: 8 digits + control letter (mod 23)."""
    compact = value.replace("-", "").replace(" ", "").upper()
    if len(compact) != 9 or not compact[:8].isdigit():
        return False
    return _DNI_LETTERS[int(compact[:8]) % 23] == compact[8]


def nie_valid(value: str) -> bool:
    """Spanish NIE: X/Y/Z + 7 digits + control letter (X=0, Y=1, Z=2, then as DNI)."""
    compact = value.replace("-", "").replace(" ", "").upper()
    if len(compact) != 9 or compact[0] not in "XYZ":
        return False
    return dni_valid(str("XYZ".index(compact[0])) + compact[1:])


def cpf_valid(value: str) -> bool:
    """Brazilian CPF: 11 digits, two mod-11 check digits, not all the same digit."""
    d = [int(c) for c in digits_of(value)]
    if len(d) != 11 or len(set(d)) == 1:
        return False
    for n in (9, 10):
        total = sum(d[i] * (n + 1 - i) for i in range(n))
        if (total * 10 % 11) % 10 != d[n]:
            return False
    return True


def jwt_header_valid(token: str) -> bool:
    """The first dot-separated part decodes (base64url) to a JSON object with ``alg``."""
    head = token.split(".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))
        header = json.loads(raw)
    except (binascii.Error, ValueError):
        return False
    return isinstance(header, dict) and "alg" in header
