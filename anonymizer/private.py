"""Retain Safe Private Option: the private attributes Mica keeps, and why.

PS3.15 E.3.10 allows keeping private attributes that are known to be safe, i.e. that never
hold identifying information. Each entry below names the private creator, the group, the
element's low byte inside the creator's block, what the value means, and the content it
must have. All are numeric acquisition parameters needed to analyse diffusion MRI (b-values,
gradient directions), documented in the vendors' DICOM conformance statements and read by
dcm2niix.

A value is kept only when creator, tag and content all match: its VR (or UN, from an
implicit-VR file or a sender that did not know it) is one the slot takes, and its bytes are
what the slot holds (decimal numbers as text, a fixed count of binary floats that are finite
and not text in disguise, or one of a few code words). A vendor reusing a known slot for a
name loses it. Every other private element, and every private creator without a kept
element, is removed.
"""

from __future__ import annotations

import math
import re
import struct
from typing import NamedTuple

DECIMALS = re.compile(rb" *[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})? *")
# Binary floats of a physical quantity: a b-value or a direction cosine, never astronomical.
MAX_FLOAT_MAGNITUDE = 1e7


class Content(NamedTuple):
    vrs: frozenset  # VRs the slot takes, besides UN
    kind: str  # "decimals", "float32", "float64" or "words"
    count: int = 0  # values, for floats
    words: frozenset = frozenset()  # for "words"


DECIMAL_TEXT = Content(frozenset({"IS", "DS"}), "decimals")
DIRECTIONALITY = Content(frozenset({"CS"}), "words", words=frozenset({b"DIRECTIONAL", b"NONE", b"ISOTROPIC", b"BMATRIX"}))


def doubles(count: int) -> Content:
    return Content(frozenset({"FD"}), "float64", count)


def singles(count: int) -> Content:
    return Content(frozenset({"FL"}), "float32", count)


class SafePrivate(NamedTuple):
    creator: str
    group: int
    element_low_byte: int
    meaning: str
    content: Content


SAFE_PRIVATE = (
    SafePrivate("SIEMENS MR HEADER", 0x0019, 0x0C, "B_value (s/mm2)", DECIMAL_TEXT),
    SafePrivate("SIEMENS MR HEADER", 0x0019, 0x0D, "DiffusionDirectionality", DIRECTIONALITY),
    SafePrivate("SIEMENS MR HEADER", 0x0019, 0x0E, "DiffusionGradientDirection", doubles(3)),
    SafePrivate("SIEMENS MR HEADER", 0x0019, 0x27, "B_matrix", doubles(6)),
    SafePrivate("GEMS_ACQU_01", 0x0019, 0xBB, "User data 2: diffusion gradient x", DECIMAL_TEXT),
    SafePrivate("GEMS_ACQU_01", 0x0019, 0xBC, "User data 3: diffusion gradient y", DECIMAL_TEXT),
    SafePrivate("GEMS_ACQU_01", 0x0019, 0xBD, "User data 4: diffusion gradient z", DECIMAL_TEXT),
    SafePrivate("GEMS_PARM_01", 0x0043, 0x39, "Slop_int_6..9: b-value", DECIMAL_TEXT),
    SafePrivate("Philips Imaging DD 001", 0x2001, 0x03, "Diffusion B-Factor", singles(1)),
    SafePrivate("Philips MR Imaging DD 001", 0x2005, 0xB0, "Diffusion direction RL", singles(1)),
    SafePrivate("Philips MR Imaging DD 001", 0x2005, 0xB1, "Diffusion direction AP", singles(1)),
    SafePrivate("Philips MR Imaging DD 001", 0x2005, 0xB2, "Diffusion direction FH", singles(1)),
)

SAFE_PRIVATE_INDEX = {(entry.creator, entry.group, entry.element_low_byte): entry.content for entry in SAFE_PRIVATE}

MAX_SAFE_PRIVATE_BYTES = 256


def safe_content(creator: str, group: int, element_low_byte: int) -> Content | None:
    """What the slot must hold, or None when it is not on the safe list."""
    return SAFE_PRIVATE_INDEX.get((creator.strip(), group, element_low_byte))


def content_matches(content: Content, vr: str, value: bytes, little_endian: bool = True) -> bool:
    """True when the raw value is what the slot holds (`vr` 'UN' when the file did not say)."""
    if vr != "UN" and vr not in content.vrs:
        return False
    if not isinstance(value, bytes) or len(value) > MAX_SAFE_PRIVATE_BYTES:
        return False
    if content.kind == "decimals":
        text = value.rstrip(b"\0 ")
        return all(DECIMALS.fullmatch(part) for part in text.split(b"\\")) if text else True
    if content.kind == "words":
        return value.rstrip(b"\0 ").strip() in content.words
    size = 8 if content.kind == "float64" else 4
    if len(value) != size * content.count or _printable(value):
        return False
    order = "<" if little_endian else ">"
    numbers = struct.unpack(f"{order}{content.count}{'d' if size == 8 else 'f'}", value)
    return all(math.isfinite(number) and abs(number) <= MAX_FLOAT_MAGNITUDE for number in numbers)


def _printable(value: bytes) -> bool:
    """Text disguised as binary: every byte printable ASCII."""
    return all(0x20 <= byte < 0x7F for byte in value)
