"""Whether a short text can be shown clean: device names, code meanings, descriptions.

Mica keeps text only where the keep list says and only when it passes these checks; a text
that cannot be shown clean is removed, never guessed at. Two checks:

- `looks_identifying`: dates in common formats ("2023-01-05", "05.01.2023", "3/11/61",
  "Jan 5 2023", "5 January 2023", "20230105"), phone numbers, runs of five digits or more,
  identifier-like runs mixing letters and digits, e-mail addresses and URLs, titles that come
  before a person's name (Dr, Mr, Mrs...), and any part of this patient's name or IDs, short
  ones included ("Ng", "Li", "O"), compared as whole words.
- `is_known_terms`: every word is a medical or imaging term (the meanings of the codes
  pydicom ships: SNOMED CT, DICOM, LOINC, RadLex...; the words of DICOM attribute keywords;
  and the usual protocol abbreviations), or a number with a unit. Other people's names
  are not in that vocabulary, so a description naming them is removed.
"""

from __future__ import annotations

import re
from functools import lru_cache

MONTHS = (
    r"jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    r"sep(?:t|tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
IDENTIFYING_PATTERNS = re.compile(
    "|".join([
        r"\b\d{1,4}\s*[-/.]\s*\d{1,2}\s*[-/.]\s*\d{1,4}\b",  # 2023-01-05, 05.01.2023, 3/11/61
        rf"\b(?:{MONTHS})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{2,4}}\b",  # Jan 5 2023
        rf"\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:{MONTHS})\.?,?\s+\d{{2,4}}\b",  # 5 January 2023
        rf"\b(?:{MONTHS})\.?\s+\d{{4}}\b",  # March 2021
        r"\+?\(?\d{2,4}\)?[\s.-]\d{2,4}[\s.-]\d{2,5}(?:[\s.-]\d{1,5})?",  # phone numbers
        r"\d{5,}",  # MRN, accession, compact dates and times
        r"\b(?=\w*\d)(?=\w*[A-Za-z])\w{6,}\b",  # identifier-like: letters and digits mixed
        r"[\w.+-]+@[\w-]+\.[\w.]+",  # e-mail
        r"https?://|www\.",  # URL
        r"\b(?:dr|mrs|miss|prof|sir|dame)\b|\b(?:mr|ms|mx)\.",  # a title before a name (MR, ms alone are not)
    ]),
    re.IGNORECASE,
)

WORD = re.compile(r"[^\W_]+")
# A number, with a unit ("1mm", "120kV") or a letter before it ("T1", "b1000", "B30f").
NUMBER_WITH_UNIT = re.compile(
    r"\d+(?:mm|cm|ms|s|kv|kvp|mas|ma|t|d|x|mhz|hz|deg|sec|min|mg|ml)?|[a-z]\d{1,4}[a-z]?", re.I
)

# Abbreviations of imaging protocols and series that are not words of a code meaning.
IMAGING_ABBREVIATIONS = {
    "AX", "AXI", "SAG", "COR", "CORO", "OBL", "TRA", "TRANS", "MPR", "MIP", "MINIP", "VR", "3D", "2D", "4D",
    "CT", "MR", "MRI", "PET", "SPECT", "NM", "US", "DX", "CR", "MG", "XA", "RF", "PT", "CTA", "MRA", "CTP",
    "T1", "T2", "T1W", "T2W", "PD", "PDW", "FLAIR", "STIR", "DWI", "DTI", "ADC", "SWI", "SWAN", "GRE", "SE", "TSE",
    "FSE", "EPI", "BOLD", "ASL", "TOF", "PC", "FIESTA", "SPGR", "MPRAGE", "VIBE", "DIXON", "HASTE", "SSFSE",
    "FS", "FATSAT", "WATER", "FAT", "IP", "OP", "IN", "OUT", "PHASE", "POST", "PRE", "GAD", "GD", "C", "W", "WO",
    "WWO", "CONTRAST", "NONCONTRAST", "NC", "IV", "ORAL", "ART", "VEN", "PORTAL", "DELAYED", "DELAY", "HR", "LR",
    "STD", "STANDARD", "SOFT", "SHARP", "SMOOTH", "BONE", "LUNG", "MEDIASTINUM", "KERNEL", "RECON", "THIN",
    "THICK", "SLICE", "SLICES", "MM", "LOCALIZER", "SCOUT", "TOPOGRAM", "SURVIEW", "PA", "AP", "LAT", "LATERAL",
    "LL", "RL", "OBLIQUE", "CC", "MLO", "ML", "LM", "XCCL", "L", "R", "LEFT", "RIGHT", "BILAT", "BILATERAL",
    "HEAD", "NECK", "CHEST", "ABD", "ABDO", "ABDOMEN", "PELVIS", "SPINE", "CSPINE", "TSPINE", "LSPINE", "BRAIN",
    "ROUTINE", "PROTOCOL", "SERIES", "STUDY", "EXAM", "SCAN", "SCREENING", "DIAGNOSTIC", "FOLLOW", "UP",
    "HELICAL", "SPIRAL", "AXIAL", "SEQ", "DYN", "DYNAMIC", "PERF", "PERFUSION", "DOSE", "LOW", "HIGH", "REPORT",
    "AND", "OR", "WITH", "WITHOUT", "OF", "THE", "FOR", "TO", "ON", "AT", "BY", "NO", "A", "AN", "PLUS",
}


def looks_identifying(text: str, sensitive_words=()) -> bool:
    """True when the text holds a date, phone number, identifier, title or this patient's name."""
    if IDENTIFYING_PATTERNS.search(text):
        return True
    words = {word.upper() for word in WORD.findall(text)}
    return any(word.upper() in words for word in sensitive_words if word)


@lru_cache(maxsize=1)
def vocabulary() -> frozenset[str]:
    """Upper-case medical and imaging words (built once per process)."""
    from pydicom.datadict import DicomDictionary
    from pydicom.sr._concepts_dict import concepts

    words = set(IMAGING_ABBREVIATIONS)
    for by_name in concepts.values():
        for codes in by_name.values():
            for meaning, _ in codes.values():
                words.update(w.upper() for w in re.findall(r"[^\W\d_]{3,}", meaning))
    for entry in DicomDictionary.values():
        words.update(w.upper() for w in re.findall(r"[A-Z][a-z]{2,}", entry[4]))
    return frozenset(words)


def is_known_terms(text: str) -> bool:
    """True when every word of the text is a known medical or imaging term or a number."""
    known = vocabulary()
    for word in WORD.findall(text):
        if NUMBER_WITH_UNIT.fullmatch(word) or word.upper() in known:
            continue
        return False
    return True


@lru_cache(maxsize=1024)
def is_clean_description(text: str, sensitive_words: tuple = ()) -> bool:
    return not looks_identifying(text, sensitive_words) and is_known_terms(text)


DEVICE_TEXT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._/+()#:,-]{0,63}")
# Device names and versions are full of short codes ("VA48A", "0d533f1", "V1.2.3"); what must
# not pass is a person's contact or a calendar date with its year, or a long number.
NOT_DEVICE_TEXT = re.compile(
    r"[\w.+-]+@[\w-]+\.[\w.]+|https?://|www\.|\b(?:dr|mrs|miss|prof)\b|\b(?:mr|ms|mx)\.|"
    r"\b(?:19|20)\d\d[-/.]\d{1,2}[-/.]\d{1,2}\b|\b\d{1,2}[-/.]\d{1,2}[-/.](?:19|20)\d\d\b|\d{7,}",
    re.IGNORECASE,
)


@lru_cache(maxsize=1024)  # the same device names recur in every file of a series
def is_clean_device_text(text: str, sensitive_words: tuple = ()) -> bool:
    """A device-written value (manufacturer, model, kernel, coil...): short, plain, no contact."""
    text = text.strip()
    if not text:
        return True
    if DEVICE_TEXT.fullmatch(text) is None or NOT_DEVICE_TEXT.search(text):
        return False
    words = {word.upper() for word in WORD.findall(text)}
    return not any(word.upper() in words for word in sensitive_words if word)


@lru_cache(maxsize=1)
def code_meanings() -> dict[tuple[str, str], frozenset[str]]:
    """(scheme designator, code value) -> the meanings pydicom's code tables give it."""
    from pydicom.sr._concepts_dict import concepts

    meanings: dict[tuple[str, str], set[str]] = {}
    for scheme, by_name in concepts.items():
        for codes in by_name.values():
            for value, (meaning, _) in codes.items():
                meanings.setdefault((scheme, value), set()).add(meaning)
    return {pair: frozenset(found) for pair, found in meanings.items()}
