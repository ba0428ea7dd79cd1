"""Deterministic synthetic data: National Insurance numbers, people, vehicles.

Nothing here describes a real person or vehicle. Every value is derived
from a SHA-256 of its key, so the data is the same on every machine and in
every run, and no table needs to be stored.

National Insurance number format (HMRC NIM39110): two prefix letters, six
digits, a suffix A-D. The first letter is never D, F, I, Q, U or V; the
second never D, F, I, O, Q, U or V; the prefixes BG, GB, KN, NK, NT, TN and
ZZ are never allocated.
"""

from __future__ import annotations

import hashlib
import re

REFERENCE_SERVICES = ("dwp-cis", "fsm", "dvla")
LABEL = "SYNTHETIC"

_FIRST = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in "DFIQUV"]
_SECOND = [c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" if c not in "DFIOQUV"]
_NEVER = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})
_NINO = re.compile(r"^([A-Z]{2})([0-9]{6})([A-D])$")
_VRM = re.compile(r"^[A-Z]{2}[0-9]{2}[A-Z]{3}$")

_GIVEN = [
    "Alex",
    "Sam",
    "Jordan",
    "Priya",
    "Mohammed",
    "Olivia",
    "Amelia",
    "Noah",
    "Aisha",
    "Oliver",
    "Grace",
    "Yusuf",
    "Chloe",
    "Daniel",
    "Fatima",
    "Harry",
]
_FAMILY = [
    "Smith",
    "Jones",
    "Taylor",
    "Khan",
    "Patel",
    "Brown",
    "Williams",
    "Ahmed",
    "Evans",
    "Wilson",
    "Hughes",
    "Begum",
    "Davies",
    "Roberts",
    "Walker",
    "Wright",
]
_STREETS = [
    "Whitechapel Road",
    "Mile End Road",
    "Commercial Street",
    "Roman Road",
    "Bow Road",
    "Brick Lane",
    "Cable Street",
    "Burdett Road",
]
_BENEFITS = [
    "Universal Credit",
    "Pension Credit",
    "Personal Independence Payment",
    "Employment and Support Allowance",
    "Carer's Allowance",
    "Attendance Allowance",
]
_MAKES = [
    ("Ford", "Fiesta"),
    ("Vauxhall", "Corsa"),
    ("Volkswagen", "Golf"),
    ("Toyota", "Yaris"),
    ("Nissan", "Qashqai"),
    ("BMW", "3 Series"),
    ("Kia", "Sportage"),
    ("Peugeot", "208"),
]
_UNIT = "ABDEFGHJLNPQRSTUWXYZ"
_COLOURS = ["Black", "Silver", "Blue", "White", "Red", "Grey"]


def _digest(*parts: str) -> bytes:
    return hashlib.sha256("\x1f".join(("gcx-reference", *parts)).encode()).digest()


def _pick(options: list[str] | list[tuple[str, str]], seed: bytes, at: int) -> object:
    return options[int.from_bytes(seed[at : at + 2], "big") % len(options)]


def nino_is_valid(nino: str) -> bool:
    """True if ``nino`` is in the valid National Insurance number format (no spaces)."""
    match = _NINO.match(nino)
    if match is None:
        return False
    prefix = match.group(1)
    return prefix[0] in _FIRST and prefix[1] in _SECOND and prefix not in _NEVER


def normalise_nino(text: str) -> str:
    return text.replace(" ", "").upper()


def generate_nino(index: int) -> str:
    """The ``index``-th synthetic National Insurance number; always valid, always the same."""
    attempt = 0
    while True:
        seed = _digest("nino", str(index), str(attempt))
        first = _FIRST[seed[0] % len(_FIRST)]
        second = _SECOND[seed[1] % len(_SECOND)]
        digits = f"{int.from_bytes(seed[2:6], 'big') % 1_000_000:06d}"
        suffix = "ABCD"[seed[6] % 4]
        nino = f"{first}{second}{digits}{suffix}"
        if nino_is_valid(nino):
            return nino
        attempt += 1


def sample_ninos(count: int) -> list[str]:
    return [generate_nino(i) for i in range(count)]


def person(nino: str) -> dict[str, object] | None:
    """The synthetic customer record for ``nino``; about one number in eight has none."""
    seed = _digest("person", nino)
    if seed[0] % 8 == 0 and nino not in _KNOWN:
        return None
    year = 1940 + seed[3] % 65
    month = 1 + seed[4] % 12
    day = 1 + seed[5] % 28
    benefits = sorted({str(_pick(_BENEFITS, seed, 10 + 2 * i)) for i in range(seed[9] % 3)})
    return {
        "nino": nino,
        "given_name": _pick(_GIVEN, seed, 11),
        "family_name": _pick(_FAMILY, seed, 13),
        "date_of_birth": f"{year:04d}-{month:02d}-{day:02d}",
        "address": {
            "line1": f"{1 + seed[15] % 200} {_pick(_STREETS, seed, 16)}",
            "town": "London",
            "postcode": f"E{1 + seed[18] % 18} {seed[19] % 10}"
            f"{_UNIT[seed[20] % 20]}{_UNIT[seed[21] % 20]}",
        },
        "benefits": benefits,
        "children_under_16": seed[22] % 4,
    }


def fsm_eligible(nino: str) -> bool | None:
    record = person(nino)
    if record is None:
        return None
    benefits = record["benefits"]
    assert isinstance(benefits, list)
    return "Universal Credit" in benefits and bool(record["children_under_16"])


def vehicle(vrm: str) -> dict[str, object] | None:
    vrm = vrm.replace(" ", "").upper()
    if not _VRM.match(vrm):
        return None
    seed = _digest("vehicle", vrm)
    if seed[0] % 10 == 0:
        return None
    make, model = _MAKES[seed[1] % len(_MAKES)]
    keeper = person(generate_nino(int.from_bytes(seed[2:4], "big")))
    return {
        "registration_mark": f"{vrm[:4]} {vrm[4:]}",
        "make": make,
        "model": model,
        "colour": _pick(_COLOURS, seed, 5),
        "first_registered": f"20{vrm[2:4]}-0{1 + seed[7] % 9}-1{seed[8] % 9}",
        "keeper": None
        if keeper is None
        else {
            "name": f"{keeper['given_name']} {keeper['family_name']}",
            "address": keeper["address"],
        },
    }


# The first sample numbers always have a record, so demos and benchmarks can rely on them.
_KNOWN = frozenset(generate_nino(i) for i in range(16))
