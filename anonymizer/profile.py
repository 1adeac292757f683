"""The PS3.15 Annex E attribute table and the profile options Mica applies.

The table lives in `annex_e_basic_profile.tsv` next to this module (tag, keyword, name, VR,
action code), so it can be read, diffed and reviewed without reading code.

How the combined action codes are resolved (PS3.15 E.3.1 lets the application choose the
variant that keeps the object conformant; Mica does not know each IOD's attribute types, so
it picks the variant that keeps the attribute present whenever that is safe):

    X/Z    -> Z   (present but empty: satisfies a Type 2 requirement, leaks nothing)
    X/D    -> D   (a dummy value: satisfies a Type 1 requirement)
    X/Z/D  -> D
    Z/D    -> D
    X/Z/U* -> U*  (the sequence is kept and every UID inside it is replaced)
    D on a sequence -> Z (an empty sequence: a dummy item could not be meaningful)
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

TABLE_PATH = Path(__file__).with_name("annex_e_basic_profile.tsv")

ACTION_CODES = {"D", "Z", "X", "K", "C", "U", "X/Z", "X/D", "X/Z/D", "Z/D", "X/Z/U*"}

# What each code becomes once resolved (see the module docstring).
RESOLVED_ACTION = {
    "D": "D",
    "Z": "Z",
    "X": "X",
    "K": "K",
    "C": "C",
    "U": "U",
    "X/Z": "Z",
    "X/D": "D",
    "X/Z/D": "D",
    "Z/D": "D",
    "X/Z/U*": "U*",
}

# DeidentificationMethodCodeSequence codes, PS3.16 CID 7050 "De-identification Method".
DCM_BASIC_PROFILE = ("113100", "Basic Application Confidentiality Profile")
DCM_CLEAN_PIXEL_DATA = ("113101", "Clean Pixel Data Option")
DCM_CLEAN_DESCRIPTORS = ("113105", "Clean Descriptors Option")
DCM_RETAIN_LONGITUDINAL_MODIFIED_DATES = (
    "113107",
    "Retain Longitudinal Temporal Information Modified Dates Option",
)
DCM_RETAIN_PATIENT_CHARACTERISTICS = ("113108", "Retain Patient Characteristics Option")
DCM_RETAIN_SAFE_PRIVATE = ("113111", "Retain Safe Private Option")

# Retain Patient Characteristics Option: the attributes it keeps (PS3.15 Table E.1-1, column
# "Rtn. Pat. Chars. Opt."), restricted to the ones a challenge needs.
PATIENT_CHARACTERISTICS = {
    0x00100040: "PatientSex",
    0x00101010: "PatientAge",
    0x00101020: "PatientSize",
    0x00101030: "PatientWeight",
    0x00102160: "EthnicGroup",
    0x001021C0: "PregnancyStatus",
    0x001021A0: "SmokingStatus",
    0x00102203: "PatientSexNeutered",
}
# Ethnic group, pregnancy and smoking status are characteristics in the standard, but they are
# rarely needed by an image-analysis challenge and are free text in practice; Mica keeps only
# these four even with the option on.
PATIENT_CHARACTERISTICS_KEPT = {0x00100040, 0x00101010, 0x00101020, 0x00101030}

# Descriptions that the Clean Descriptors Option would keep after cleaning. Mica cannot clean
# free text reliably, so with the option off (the default) these are removed as the Basic
# Profile says; with the option on they are kept only if they hold no digits-and-letters run
# that looks like an identifier (see dicom.py). Listed for the report and the tests.
DESCRIPTORS = {
    0x00081030: "StudyDescription",
    0x0008103E: "SeriesDescription",
    0x00181030: "ProtocolName",
    0x00204000: "ImageComments",
}


@dataclass(frozen=True)
class Profile:
    """The Basic Profile plus the options chosen for a run."""

    name: str
    retain_longitudinal_modified_dates: bool
    retain_patient_characteristics: bool
    retain_safe_private: bool
    clean_descriptors: bool = False

    def method_codes(self) -> list[tuple[str, str]]:
        codes = [DCM_BASIC_PROFILE]
        if self.clean_descriptors:
            codes.append(DCM_CLEAN_DESCRIPTORS)
        if self.retain_longitudinal_modified_dates:
            codes.append(DCM_RETAIN_LONGITUDINAL_MODIFIED_DATES)
        if self.retain_patient_characteristics:
            codes.append(DCM_RETAIN_PATIENT_CHARACTERISTICS)
        if self.retain_safe_private:
            codes.append(DCM_RETAIN_SAFE_PRIVATE)
        return codes


# "basic" is what a challenge needs: the Basic Profile with shifted dates (follow-up intervals
# survive), patient sex/age/size/weight and the safe private list. "strict" is the bare Basic
# Profile with no option.
PROFILES = {
    "basic": Profile(
        name="basic",
        retain_longitudinal_modified_dates=True,
        retain_patient_characteristics=True,
        retain_safe_private=True,
    ),
    "strict": Profile(
        name="strict",
        retain_longitudinal_modified_dates=False,
        retain_patient_characteristics=False,
        retain_safe_private=False,
    ),
}


def get_profile(profile) -> Profile:
    if isinstance(profile, Profile):
        return profile
    try:
        return PROFILES[profile]
    except KeyError:
        raise ValueError(
            f"unknown profile {profile!r}; choose one of {', '.join(sorted(PROFILES))}"
        ) from None


@dataclass(frozen=True)
class TableRow:
    tag: str  # "(0010,0010)" or with "xx" for a repeating group
    keyword: str
    name: str
    vr: str
    action: str


@lru_cache(maxsize=1)
def annex_e_table() -> tuple[TableRow, ...]:
    """Return the rows of the Annex E table, as written in the TSV file."""
    rows = []
    with TABLE_PATH.open(encoding="utf-8") as handle:
        lines = (line for line in handle if not line.startswith("#"))
        for record in csv.DictReader(lines, delimiter="\t"):
            if record["action"] not in ACTION_CODES:
                raise ValueError(f"{TABLE_PATH}: unknown action {record['action']!r} for {record['tag']}")
            rows.append(TableRow(**record))
    return tuple(rows)


def _tag_int(text: str) -> int:
    group, element = text.strip("()").split(",")
    return (int(group, 16) << 16) | int(element, 16)


@lru_cache(maxsize=1)
def actions_by_tag() -> dict[int, str]:
    """Resolved action per exact tag (the rows without a repeating group)."""
    return {
        _tag_int(row.tag): RESOLVED_ACTION[row.action]
        for row in annex_e_table()
        if "x" not in row.tag.lower()
    }


def repeating_group_action(tag: int) -> str | None:
    """Action for the repeating-group rows: curves (50xx,xxxx) and overlays (60xx,3000/4000)."""
    group = tag >> 16
    element = tag & 0xFFFF
    if 0x5000 <= group <= 0x501E and group % 2 == 0:
        return "X"
    if 0x6000 <= group <= 0x601E and group % 2 == 0 and element in (0x3000, 0x4000):
        return "X"
    return None
