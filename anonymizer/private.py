"""Retain Safe Private Option: the private attributes Mica keeps, and why.

PS3.15 E.3.10 allows keeping private attributes that are known to be safe, i.e. that never
hold identifying information. Each entry below names the private creator, the group, the
element's low byte inside the creator's block, and what the value means. All are numeric
acquisition parameters needed to analyse diffusion MRI and CT images (b-values, gradient
directions), documented in the vendors' DICOM conformance statements and used by dcm2niix.

A value is kept only if it is numeric (one of NUMERIC_VRS, or UN from an implicit-VR file)
and at most MAX_SAFE_PRIVATE_BYTES long: a vendor reusing a known slot for text or a blob
still loses it. Every other private element, and every private creator without a kept
element, is removed.
"""

from __future__ import annotations

from typing import NamedTuple


class SafePrivate(NamedTuple):
    creator: str
    group: int
    element_low_byte: int
    meaning: str


SAFE_PRIVATE = (
    SafePrivate("SIEMENS MR HEADER", 0x0019, 0x0C, "B_value (s/mm2)"),
    SafePrivate("SIEMENS MR HEADER", 0x0019, 0x0D, "DiffusionDirectionality"),
    SafePrivate("SIEMENS MR HEADER", 0x0019, 0x0E, "DiffusionGradientDirection"),
    SafePrivate("SIEMENS MR HEADER", 0x0019, 0x27, "B_matrix"),
    SafePrivate("GEMS_ACQU_01", 0x0019, 0xBB, "User data 2: diffusion gradient x"),
    SafePrivate("GEMS_ACQU_01", 0x0019, 0xBC, "User data 3: diffusion gradient y"),
    SafePrivate("GEMS_ACQU_01", 0x0019, 0xBD, "User data 4: diffusion gradient z"),
    SafePrivate("GEMS_PARM_01", 0x0043, 0x39, "Slop_int_6..9: b-value"),
    SafePrivate("Philips Imaging DD 001", 0x2001, 0x03, "Diffusion B-Factor"),
    SafePrivate("Philips MR Imaging DD 001", 0x2005, 0xB0, "Diffusion direction RL"),
    SafePrivate("Philips MR Imaging DD 001", 0x2005, 0xB1, "Diffusion direction AP"),
    SafePrivate("Philips MR Imaging DD 001", 0x2005, 0xB2, "Diffusion direction FH"),
)

SAFE_PRIVATE_INDEX = {(entry.creator, entry.group, entry.element_low_byte) for entry in SAFE_PRIVATE}

NUMERIC_VRS = {"DS", "IS", "FD", "FL", "US", "SS", "UL", "SL", "UV", "SV", "OF", "OD", "UN"}
MAX_SAFE_PRIVATE_BYTES = 256


def is_safe_private(creator: str, group: int, element_low_byte: int) -> bool:
    return (creator.strip(), group, element_low_byte) in SAFE_PRIVATE_INDEX
