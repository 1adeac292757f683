"""De-identification of one DICOM dataset: the Annex E table applied through every sequence.

`anonymize_dicom_file` reads one file, decides whether it can be made safe, and returns the
anonymized dataset with the new identifiers. Anything it cannot make safe raises Quarantine
with a reason that names the tag or the problem; the caller writes nothing for that file.
"""

from __future__ import annotations

import datetime
import itertools
import re
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache

import pydicom
import pydicom.config
import pydicom.encaps
from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.datadict import DicomDictionary, keyword_for_tag
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import EXPLICIT_VR_LENGTH_32, write_sequence
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import Tag
from pydicom.uid import (
    UID,
    AllTransferSyntaxes,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    PYDICOM_IMPLEMENTATION_UID,
    UID_dictionary,
)

from . import burned_in, images, keys, private, text_checks
from .keep_list import keep_list
from .report import OriginalIdentifiers
from .elements import peek_value
from .profile import (
    DCM_CLEAN_PIXEL_DATA,
    DESCRIPTORS,
    PATIENT_CHARACTERISTICS,
    PATIENT_CHARACTERISTICS_KEPT,
    Profile,
    actions_by_tag,
    repeating_group_action,
)
from .writer import element_bytes

__all__ = ["Quarantine", "DicomResult", "anonymize_dicom_file", "anonymize_dataset"]

MICA_IMPLEMENTATION_VERSION_NAME = "MICA_ANON_1"

TAG_PATIENT_NAME = 0x00100010
TAG_PATIENT_ID = 0x00100020
TAG_ISSUER_OF_PATIENT_ID = 0x00100021
TAG_ACCESSION_NUMBER = 0x00080050
TAG_PATIENT_BIRTH_DATE = 0x00100030
TAG_STUDY_INSTANCE_UID = 0x0020000D
TAG_SERIES_INSTANCE_UID = 0x0020000E
TAG_SOP_INSTANCE_UID = 0x00080018
TAG_SOP_CLASS_UID = 0x00080016
TAG_MODALITY = 0x00080060
TAG_ROWS = 0x00280010
TAG_COLUMNS = 0x00280011
TAG_SAMPLES_PER_PIXEL = 0x00280002
TAG_BITS_ALLOCATED = 0x00280100
TAG_NUMBER_OF_FRAMES = 0x00280008
TAG_PHOTOMETRIC_INTERPRETATION = 0x00280004
TAG_PIXEL_DATA = 0x7FE00010
TAG_PATIENT_AGE = 0x00101010
TAG_SPECIFIC_CHARACTER_SET = 0x00080005
TAG_PATIENT_IDENTITY_REMOVED = 0x00120062
TAG_DEIDENTIFICATION_METHOD = 0x00120063
TAG_DEIDENTIFICATION_METHOD_CODE_SEQUENCE = 0x00120064
TAG_LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED = 0x00280303
TAG_BURNED_IN_ANNOTATION = 0x00280301
PIXEL_DATA_TAGS = (0x7FE00010, 0x7FE00008, 0x7FE00009)  # Pixel, Float Pixel, Double Float Pixel

# Dates that belong to the person rather than to the imaging timeline: never shifted and kept,
# always emptied or removed as the table says (age is kept instead, when asked).
PERSONAL_DATES = {
    0x00100030,  # PatientBirthDate
    0x00100032,  # PatientBirthTime
    0x001021D0,  # LastMenstrualDate
    0x00100033,  # PatientBirthDateInAlternativeCalendar
    0x00100034,  # PatientDeathDateInAlternativeCalendar
}

# Temporal elements that the Retain Longitudinal Temporal Information option does not cover
# (Table E.1-1 gives them no option code): removed as the table says even with the option on.
# GPS Time Stamp belongs with the GPS position, which is always removed.
NOT_RETAINED_TEMPORAL = {
    0x00160077,  # GPSTimeStamp
}

DATE_VRS = {"DA", "DT"}
TEMPORAL_VRS = {"DA", "DT", "TM"}

# Elements Mica creates hold values it made itself (new UIDs, shifted dates, empty or dummy
# values, all valid for their VR), so pydicom's per-value validation is skipped for them.
NO_VALIDATION = pydicom.config.IGNORE

# Dummy values for action D: fixed, plainly artificial, valid for their VR.
DUMMY_BY_VR = {
    "AE": "ANONYMIZED",
    "AS": "000Y",
    "CS": "ANONYMIZED",
    "DA": "19000101",
    "DS": "0",
    "DT": "19000101000000",
    "IS": "0",
    "LO": "ANONYMIZED",
    "LT": "ANONYMIZED",
    "PN": "ANONYMIZED",
    "SH": "ANONYMIZED",
    "ST": "ANONYMIZED",
    "TM": "000000",
    "UC": "ANONYMIZED",
    "UR": "",
    "UT": "ANONYMIZED",
}

# Ages above 89 identify (HIPAA Safe Harbor groups them as "90 or older"); 090Y stands for all.
MAX_REPORTED_AGE_YEARS = 90

# Values the keep list's checks accept (PS3.5 6.2 character repertoires, tightened).
NUMBER_STRING_PATTERNS = {
    "IS": re.compile(r" *[+-]?[0-9]{1,12} *"),
    "DS": re.compile(r" *[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})? *"),
}
CODE_STRING = re.compile(r"[A-Z0-9_ ]{0,16}")
CODE_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
TAG_CODE_VALUE = 0x00080100
TAG_CODING_SCHEME_DESIGNATOR = 0x00080102


SHORT_METHOD_NAMES = {
    "113100": "DICOM PS3.15 E Basic Profile",
    "113101": "Clean Pixel Data",
    "113105": "Clean Descriptors",
    "113107": "Retain Longitudinal Modified Dates",
    "113108": "Retain Patient Characteristics",
    "113111": "Retain Safe Private",
}


class Quarantine(Exception):
    """This file cannot be made safe; the message is the reason shown in the report.

    `original`: the sender's identifiers of the file, when they could be read (private)."""

    original: OriginalIdentifiers | None = None


@dataclass
class DicomResult:
    dataset: Dataset
    patient_pseudonym: str
    study_uid: str
    series_uid: str
    sop_instance_uid: str
    modality: str | None
    actions: Counter = field(default_factory=Counter)
    uid_map: dict[str, str] = field(default_factory=dict)
    original: OriginalIdentifiers | None = None


def tag_label(tag: int) -> str:
    keyword = keyword_for_tag(tag) or ("private" if (tag >> 16) % 2 else "unknown")
    return f"({tag >> 16:04X},{tag & 0xFFFF:04X}) {keyword}"


def is_well_known_uid(uid: str) -> bool:
    """UIDs the DICOM standard itself defines (SOP classes, transfer syntaxes, well-known
    frames of reference, coding schemes: pydicom's UID registry) are kept as they are.

    Nothing else is, whatever its root: a value that merely starts with the DICOM root can
    be anything, `1.2.840.10008.1/../../X` included.
    """
    return uid in UID_dictionary


def original_identifiers(dataset: Dataset) -> OriginalIdentifiers:
    """The sender's identifiers, as read before anything changes (for the private report)."""

    def text(tag: int) -> str | None:
        try:
            value = peek_value(dataset, tag)
        except Exception:  # a value pydicom cannot decode: not an identifier anyone can use
            return None
        if isinstance(value, MultiValue):
            value = "\\".join(str(part) for part in value)
        value = str(value or "").strip().rstrip("\0")
        return value or None

    return OriginalIdentifiers(
        patient_id=text(TAG_PATIENT_ID),
        issuer_of_patient_id=text(TAG_ISSUER_OF_PATIENT_ID),
        accession_number=text(TAG_ACCESSION_NUMBER),
        study_uid=text(TAG_STUDY_INSTANCE_UID),
        series_uid=text(TAG_SERIES_INSTANCE_UID),
        sop_instance_uid=text(TAG_SOP_INSTANCE_UID),
    )


def patient_identity(dataset: Dataset) -> str:
    """The original identity a pseudonym and a date shift derive from.

    PatientID with its IssuerOfPatientID when present (two hospitals can give the same ID to
    two people); otherwise the name; otherwise the study (every study then counts as a patient
    of its own, the only safe assumption). An ID without issuer keeps the identity it always had.
    """
    patient_id = dataset.get(TAG_PATIENT_ID)
    patient_id = str(patient_id.value or "").strip() if patient_id is not None else ""
    if patient_id:
        issuer = str(peek_value(dataset, TAG_ISSUER_OF_PATIENT_ID) or "").strip()
        return f"id:{issuer}\\{patient_id}" if issuer else "id:" + patient_id
    patient_name = dataset.get(TAG_PATIENT_NAME)
    patient_name = str(patient_name.value or "").strip() if patient_name is not None else ""
    if patient_name:
        return "name:" + patient_name
    study = dataset.get(TAG_STUDY_INSTANCE_UID)
    return "study:" + (str(study.value or "") if study is not None else "")


class DatasetAnonymizer:
    """Applies the profile to one dataset, recursively; one instance per file."""

    def __init__(self, key: bytes, profile: Profile, *, keep_uid_map: bool, shift_days: int):
        self.key = key
        self.profile = profile
        self.keep_uid_map = keep_uid_map
        self.shift = datetime.timedelta(days=shift_days)
        self.actions: Counter = Counter()
        self.uid_map: dict[str, str] = {}
        self.plan = plan_for(profile)
        self.sensitive_words: tuple[str, ...] = ()
        # The top-level dataset and the encoding it will be written in (implicit VR, little
        # endian), when its elements may be stored already encoded (see settle).
        self.root: Dataset | None = None
        self.write_encoding: tuple[bool, bool] | None = None
        self.settled: int | bool | None = None  # see settle
        self.character_set_final = False  # (0008,0005) of the top level cleaned

    # --- values -----------------------------------------------------------------------------

    def new_uid(self, uid: str, *, instance: bool = False) -> str:
        """The keyed replacement of a UID; registry UIDs stay, except as an instance's own
        Study, Series or SOP Instance UID, which the standard never assigns."""
        uid = uid.strip().rstrip("\0")
        if not uid or (is_well_known_uid(uid) and not instance):
            return uid
        new = keys.keyed_uid(self.key, uid)
        if self.keep_uid_map:
            self.uid_map[uid] = new
        return new

    def shift_date(self, value: str) -> str:
        """Shift a DA value (or a DA range) back by the patient's shift; '' if unparseable."""
        parts = value.strip().split("-")
        shifted = []
        for part in parts:
            if not part:
                shifted.append("")
                continue
            if len(part) != 8 or not part.isdigit():
                return ""
            try:
                day = datetime.date(int(part[:4]), int(part[4:6]), int(part[6:8])) - self.shift
            except (ValueError, OverflowError):  # not a calendar date, or shifted before year 1
                return ""
            shifted.append(f"{day.year:04d}{day.month:02d}{day.day:02d}")
        return "-".join(shifted)

    def shift_datetime(self, value: str) -> str:
        """Shift a DT value's date; keeps the time of day, drops a UTC offset (it locates)."""
        value = value.strip()
        for sign in "+-":
            if sign in value[8:]:
                value = value[: 8 + value[8:].index(sign)]
        if len(value) < 8:
            return ""
        date_part = self.shift_date(value[:8])
        return date_part + value[8:] if date_part else ""

    # --- traversal --------------------------------------------------------------------------

    def clean(self, dataset: Dataset) -> None:
        private_creators: list[int] = []
        kept_private_creators: set[int] = set()
        # The dataset's own tag objects are handed on: pydicom finds them at once, where a
        # plain int would be converted to a Tag and compared in Python on every access.
        for tag in list(dataset.keys()):
            group = tag >> 16
            if group % 2 == 1:
                if 0x10 <= tag & 0xFFFF <= 0xFF:
                    private_creators.append(tag)  # decided after their elements, below
                else:
                    self.clean_private(dataset, tag, kept_private_creators)
                continue
            if tag & 0xFFFF == 0 or group == 0x0002:
                del dataset[tag]  # group lengths go stale after edits; meta is rebuilt
                continue
            try:
                self.clean_element(dataset, tag)
            except Quarantine:
                raise
            except Exception as error:  # pydicom raises many kinds on invalid values
                raise Quarantine(f"invalid value in {tag_label(tag)} ({type(error).__name__})") from None
        for tag in private_creators:
            if tag not in kept_private_creators:
                del dataset[tag]

    def clean_private(self, dataset: Dataset, tag: int, kept_creators: set[int]) -> None:
        """Keep a private element on the safe list, remove any other (creators excepted)."""
        group, element_number = tag >> 16, tag & 0xFFFF
        if self.profile.retain_safe_private and element_number >= 0x1000:
            creator_tag = (group << 16) | (element_number >> 8)
            creator = dataset.get(creator_tag)
            element = dataset.get_item(tag)  # raw: a private value is never decoded
            content = (
                private.safe_content(creator.value, group, element_number & 0xFF)
                if creator is not None and isinstance(creator.value, str) else None
            )
            if (
                content is not None
                and isinstance(element, RawDataElement)
                and private.content_matches(content, element.VR or "UN", element.value, element.is_little_endian)
            ):
                kept_creators.add(creator_tag)
                self.actions["private kept (safe list)"] += 1
                return
        del dataset[tag]
        self.actions["private removed"] += 1

    def clean_element(self, dataset: Dataset, tag: int) -> None:
        """Apply the profile to one public element.

        Decisions use the tag and VR only; the value is decoded (pydicom converts a raw
        element on access) only when it must be read or changed. Kept elements stay raw and
        are written back byte for byte, which is most of Mica's speed.
        """
        number = int(tag)  # a plain int: Mica's tables are keyed by int
        planned = self.plan.get(number)
        if planned is None:
            vr = element_vr(dataset, number)
            planned = (choose_handler(self.profile, number, vr), vr)
            if PUBLIC_VR.get(number):  # the dictionary fixes the VR, so the choice holds in every file
                self.plan[number] = planned
        handler, vr = planned
        if dataset is self.root:
            if handler in SETTLED_HANDLERS and self.settle(dataset, tag, vr, handler):
                return
            handler(self, dataset, tag, vr)
            if number == TAG_SPECIFIC_CHARACTER_SET:
                self.character_set_final = True  # kept, or removed, it changes no more
            return
        handler(self, dataset, tag, vr)

    def settle(self, dataset: Dataset, tag: int, vr: str, handler) -> bool:
        """Apply a handler whose outcome depends on the element alone, once per distinct
        element of this process, and store its outcome as pydicom will write it; False if
        the handler is to be applied as usual.

        The slices of a series repeat most of their elements: the same study and series
        UIDs, dates, device names, codes, references to the study (sequences). Decoding,
        cleaning and encoding them again in every file was most of Mica's time beyond
        pydicom's read and write. The second time an element is met, the handler runs and
        its outcome (removed, or the element encoded exactly as the file's writer will: same
        byte order, VR encoding and character sets) is kept with the actions and UID map
        entries it made, keyed on everything it depends on; later files holding the same
        bytes get that outcome without decoding anything. Elements met once (references to
        the previous slice, instance UIDs) are never encoded twice.
        """
        raw = dataset.get_item(tag)
        if not isinstance(raw, RawDataElement):
            return False
        if raw.value is not None and len(raw.value) > MAX_SETTLED_BYTES:
            return False
        if self.settled is None:
            if not self.character_set_final and TAG_SPECIFIC_CHARACTER_SET in dataset:
                return False  # not cleaned yet (elements out of order): it could still change
            self.settled = self.settled_context(dataset)
        if self.settled is False:
            return False
        cache_key = (self.settled, tag, vr, handler, raw.VR, raw.length, raw.value, raw.is_implicit_VR,
                     raw.is_little_endian)
        if len(SETTLED) >= MAX_SETTLED:
            SETTLED.clear()
        settled = SETTLED.get(cache_key)
        if settled is None:
            if cache_key not in SETTLED:
                SETTLED[cache_key] = None  # met once: applied as usual
                return False
            actions, uid_map = self.actions, self.uid_map
            self.actions, self.uid_map = Counter(), {}
            try:
                handler(self, dataset, tag, vr)
                handler_actions, handler_uid_map = self.actions, self.uid_map
            finally:
                self.actions, self.uid_map = actions, uid_map
            outcome = dataset.get_item(tag)
            if outcome is not None and not isinstance(outcome, RawDataElement):
                outcome = encoded_element(outcome, self.write_encoding, dataset.get("SpecificCharacterSet", default_encoding))
                if outcome is None:  # not writable: the file's writer will say so
                    self.actions.update(handler_actions)
                    self.uid_map.update(handler_uid_map)
                    return True
            settled = (outcome, handler_actions, handler_uid_map)
            SETTLED[cache_key] = settled
        outcome, handler_actions, handler_uid_map = settled
        actions = self.actions
        for action, count in handler_actions.items():
            actions[action] += count
        if handler_uid_map:
            self.uid_map.update(handler_uid_map)
        if outcome is None:
            del dataset[tag]
        else:
            # What Dataset.__setitem__ comes to for a raw public element (no private creator
            # to look up, no pixel array to reset), without its checks: a third of the time
            # of a settled element.
            dataset._dict[tag] = outcome
        return True

    def settled_context(self, dataset: Dataset) -> int | bool:
        """The number of the files like this one (same key, date shift, profile, sensitive
        words, encoding and character sets), or False when its elements are not to be settled."""
        if self.write_encoding is None or dataset.original_encoding != self.write_encoding:
            return False  # the writer decodes and converts every element of such a dataset
        if dataset.original_character_set != dataset._character_set:
            return False  # likewise
        character_sets = dataset.get("SpecificCharacterSet", default_encoding)
        context = (str(character_sets), self.write_encoding, self.key, self.profile, self.keep_uid_map,
                   self.shift, self.sensitive_words)
        if context not in SETTLED_CONTEXTS:
            if len(SETTLED_CONTEXTS) >= MAX_SETTLED:
                SETTLED_CONTEXTS.clear()  # numbers are never reused: what was settled stays apart
            SETTLED_CONTEXTS[context] = next(CONTEXT_NUMBERS)
        return SETTLED_CONTEXTS[context]

    # --- what happens to one element (chosen by choose_handler) -------------------------------

    def pseudonymize(self, dataset: Dataset, tag: int, vr: str) -> None:
        if dataset is not self.root:  # the top level's are written by finish(), the same value
            put(dataset, tag, vr, keys.patient_pseudonym(self.key, patient_identity(dataset)))
        self.actions["pseudonym"] += 1

    def drop_method_record(self, dataset: Dataset, tag: int, vr: str) -> None:
        del dataset[tag]  # rewritten by finish() at the top level; stale inside items

    def keep_characteristic(self, dataset: Dataset, tag: int, vr: str) -> None:
        self.actions["kept (patient characteristic)"] += 1

    def keep_capped_age(self, dataset: Dataset, tag: int, vr: str) -> None:
        element = dataset[tag]
        element.value = capped_age(str(element.value or ""))
        self.actions["kept (patient characteristic)"] += 1

    def clean_descriptor(self, dataset: Dataset, tag: int, vr: str) -> None:
        if not all(text_checks.is_clean_description(text, self.sensitive_words)
                   for text in decoded_strings(dataset, tag)):
            del dataset[tag]
            self.actions["X"] += 1
        else:
            self.actions["kept (clean descriptors)"] += 1

    def shift_dates(self, dataset: Dataset, tag: int, vr: str) -> None:
        values = text_values(dataset, tag)
        if values:
            shift = self.shift_date if vr == "DA" else self.shift_datetime
            set_values(dataset, tag, vr, [shift(value) for value in values])
        self.actions["date shifted"] += 1

    def keep_time(self, dataset: Dataset, tag: int, vr: str) -> None:
        self.actions["kept (time, dates shifted)"] += 1

    def remove(self, dataset: Dataset, tag: int, vr: str) -> None:
        del dataset[tag]
        self.actions["X"] += 1

    def empty_sequence(self, dataset: Dataset, tag: int, vr: str) -> None:
        put(dataset, tag, "SQ", Sequence())
        self.actions["Z"] += 1

    def empty_text(self, dataset: Dataset, tag: int, vr: str) -> None:
        put(dataset, tag, vr, "")
        self.actions["Z"] += 1

    def empty_value(self, dataset: Dataset, tag: int, vr: str) -> None:
        element = dataset[tag]
        element.value = element.empty_value
        self.actions["Z"] += 1

    def dummy_text(self, dataset: Dataset, tag: int, vr: str) -> None:
        put(dataset, tag, vr, DUMMY_BY_VR[vr])
        self.actions["D"] += 1

    def dummy_value(self, dataset: Dataset, tag: int, vr: str) -> None:
        element = dataset[tag]
        element.value = dummy_value(element)
        self.actions["D"] += 1

    def walk_sequence(self, dataset: Dataset, tag: int, vr: str) -> None:
        for item in dataset[tag].value:
            self.clean(item)

    def replace_uids(self, dataset: Dataset, tag: int, vr: str) -> None:
        values = text_values(dataset, tag)
        if values:
            set_values(dataset, tag, "UI", [self.new_uid(uid) for uid in values])
        self.actions["U"] += 1

    def replace_instance_uids(self, dataset: Dataset, tag: int, vr: str) -> None:
        values = text_values(dataset, tag)
        if values:
            set_values(dataset, tag, "UI", [self.new_uid(uid, instance=True) for uid in values])
        self.actions["U"] += 1

    def refuse_non_uid(self, dataset: Dataset, tag: int, vr: str) -> None:
        raise Quarantine(f"{tag_label(tag)} should hold UIDs but has VR {vr}")

    def remove_unlisted(self, dataset: Dataset, tag: int, vr: str) -> None:
        del dataset[tag]
        self.actions["X (not on the keep list)"] += 1

    def keep_number(self, dataset: Dataset, tag: int, vr: str) -> None:
        """Numbers stay numbers: an IS or DS holding anything else is removed."""
        pattern = NUMBER_STRING_PATTERNS.get(vr)
        if pattern is not None:
            values = ascii_values(dataset, tag)
            if values is None or not all(pattern.fullmatch(value) for value in values if value):
                del dataset[tag]
                self.actions["X (not a number)"] += 1

    def keep_code_string(self, dataset: Dataset, tag: int, vr: str) -> None:
        values = ascii_values(dataset, tag)
        if values is None or not all(CODE_STRING.fullmatch(value) for value in values):
            del dataset[tag]
            self.actions["X (not a code string)"] += 1

    def clean_device_text(self, dataset: Dataset, tag: int, vr: str) -> None:
        if all(text_checks.is_clean_device_text(value, self.sensitive_words) for value in decoded_strings(dataset, tag)):
            self.actions["kept (device text)"] += 1
        else:  # a dummy, not an empty value: several of these are Type 1 in enhanced IODs
            put(dataset, tag, vr, DUMMY_BY_VR[vr])
            self.actions["D (device text not clean)"] += 1

    def clean_label(self, dataset: Dataset, tag: int, vr: str) -> None:
        if all(text_checks.is_clean_description(value, self.sensitive_words) for value in decoded_strings(dataset, tag)):
            self.actions["kept (label of known terms)"] += 1
        else:
            put(dataset, tag, vr, DUMMY_BY_VR[vr])
            self.actions["D (label not clean)"] += 1

    def check_code(self, dataset: Dataset, tag: int, vr: str) -> None:
        if not all(CODE_VALUE.fullmatch(value) for value in decoded_strings(dataset, tag)):
            del dataset[tag]
            self.actions["X (not a code)"] += 1

    def check_code_meaning(self, dataset: Dataset, tag: int, vr: str) -> None:
        """A meaning its scheme defines is kept or restored; another only if shown clean."""
        meaning = " ".join(decoded_strings(dataset, tag))
        scheme = str(peek_value(dataset, TAG_CODING_SCHEME_DESIGNATOR) or "").strip()
        value = str(peek_value(dataset, TAG_CODE_VALUE) or "").strip()
        known = text_checks.code_meanings().get((scheme, value))
        if known:
            if meaning not in known:
                put(dataset, tag, vr, min(known))
                self.actions["code meaning set from its scheme"] += 1
        elif not text_checks.is_clean_description(meaning, self.sensitive_words):
            put(dataset, tag, vr, DUMMY_BY_VR["LO"])  # Type 1 in every code item
            self.actions["D (code meaning not clean)"] += 1

    def remove_unknown(self, dataset: Dataset, tag: int, vr: str) -> None:
        # A public element no dictionary knows: its meaning, so its safety, is unknown.
        del dataset[tag]
        self.actions["X (unknown public element)"] += 1

    def keep(self, dataset: Dataset, tag: int, vr: str) -> None:
        pass


# Outcomes of elements met so far in this process (see DatasetAnonymizer.settle): key ->
# (element as it will be written or None when removed, actions, UID map), or None for an
# element met once. Keys start with the number of their file context (settled_context).
# Bounded: at most MAX_SETTLED elements of at most MAX_SETTLED_BYTES, a few MiB.
SETTLED: dict[tuple, tuple | None] = {}
SETTLED_CONTEXTS: dict[tuple, int] = {}
CONTEXT_NUMBERS = itertools.count()
MAX_SETTLED = 4096
MAX_SETTLED_BYTES = 1024


def encoded_element(element: DataElement, encoding: tuple[bool, bool], character_sets) -> RawDataElement | None:
    """The element as a raw one that pydicom writes into exactly the bytes it would write
    for `element` (None when it cannot be written, or not so)."""
    implicit, little = encoding
    try:
        written = element_bytes(element, implicit, little, character_sets)
    except Exception:
        return None
    if implicit:
        header = 8  # tag, 32-bit length
    else:
        header = 12 if written[4:6].decode("latin-1") in EXPLICIT_VR_LENGTH_32 else 8
    undefined = element.is_undefined_length and element.VR == "SQ"
    value = written[header:len(written) - 8] if undefined else written[header:]
    raw = RawDataElement(element.tag, element.VR, 0xFFFFFFFF if undefined else len(value), value, 0, implicit, little)
    try:
        check = element_bytes(raw, implicit, little, character_sets)
    except Exception:
        return None
    return raw if check == written else None


# Written by finish() for the whole file; any copy in the source is stale.
METHOD_RECORD_TAGS = frozenset({
    TAG_PATIENT_IDENTITY_REMOVED, TAG_DEIDENTIFICATION_METHOD,
    TAG_DEIDENTIFICATION_METHOD_CODE_SEQUENCE, TAG_LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
})


# The UIDs an instance's output path is built from: always replaced by generated ones.
INSTANCE_UID_TAGS = frozenset({TAG_STUDY_INSTANCE_UID, TAG_SERIES_INSTANCE_UID, TAG_SOP_INSTANCE_UID})


# How each `how` of the keep list is applied (dates and times with the option are above).
KEEP_HANDLERS = {
    "number": DatasetAnonymizer.keep_number,
    "code-string": DatasetAnonymizer.keep_code_string,
    "remap": DatasetAnonymizer.replace_uids,
    "date": DatasetAnonymizer.shift_dates,  # beyond the table: shifted in every profile
    "time": DatasetAnonymizer.remove_unlisted,  # times only with shifted dates
    "walk": DatasetAnonymizer.walk_sequence,
    "pixels": DatasetAnonymizer.keep,
    "device": DatasetAnonymizer.clean_device_text,
    "label": DatasetAnonymizer.clean_label,
    "code": DatasetAnonymizer.check_code,
    "meaning": DatasetAnonymizer.check_code_meaning,
}


# Handlers whose outcome depends on the element alone (and the file's key, date shift,
# profile and sensitive words), never on other elements: DatasetAnonymizer.settle keeps it.
SETTLED_HANDLERS = frozenset({
    DatasetAnonymizer.walk_sequence,
    DatasetAnonymizer.shift_dates,
    DatasetAnonymizer.replace_uids,
    DatasetAnonymizer.replace_instance_uids,
    DatasetAnonymizer.clean_device_text,
    DatasetAnonymizer.clean_label,
    DatasetAnonymizer.clean_descriptor,
    DatasetAnonymizer.check_code,
    DatasetAnonymizer.keep_capped_age,
    DatasetAnonymizer.empty_sequence,
    DatasetAnonymizer.empty_text,
    DatasetAnonymizer.dummy_text,
})


def choose_handler(profile: Profile, tag: int, vr: str):
    """The DatasetAnonymizer method that applies the profile to a public element.

    It depends on the tag, the VR and the profile only, never on the value, so
    DatasetAnonymizer.clean_element keeps the choice for every tag the dictionary knows.
    """
    anonymizer = DatasetAnonymizer
    if tag in (TAG_PATIENT_NAME, TAG_PATIENT_ID):
        return anonymizer.pseudonymize
    if tag in METHOD_RECORD_TAGS:
        return anonymizer.drop_method_record
    if tag in INSTANCE_UID_TAGS:
        return anonymizer.replace_instance_uids
    if tag in PATIENT_CHARACTERISTICS and profile.retain_patient_characteristics:
        if tag in PATIENT_CHARACTERISTICS_KEPT:
            return anonymizer.keep_capped_age if tag == TAG_PATIENT_AGE else anonymizer.keep_characteristic
    if tag in DESCRIPTORS and profile.clean_descriptors:
        return anonymizer.clean_descriptor

    action = actions_by_tag().get(tag) or repeating_group_action(tag)

    how = keep_list().get(tag)

    if (
        profile.retain_longitudinal_modified_dates
        and vr in TEMPORAL_VRS
        and (action is not None or how in ("date", "time"))
        and tag not in PERSONAL_DATES
        and tag not in NOT_RETAINED_TEMPORAL
        and action != "U"
    ):
        return anonymizer.shift_dates if vr in DATE_VRS else anonymizer.keep_time

    if action is None or action == "K":
        # Not in the table: kept only as the keep list says, removed otherwise.
        if how is None:
            return anonymizer.remove_unlisted if keyword_for_tag(tag) else anonymizer.remove_unknown
        if how == "empty":
            return anonymizer.empty_text if vr in DUMMY_BY_VR or vr == "UI" else anonymizer.empty_value
        return KEEP_HANDLERS[how]
    if action == "X":
        return anonymizer.remove
    if action == "Z" or (action == "D" and vr == "SQ"):
        if vr == "SQ":
            return anonymizer.empty_sequence
        if vr in DUMMY_BY_VR or vr == "UI":
            return anonymizer.empty_text
        return anonymizer.empty_value
    if action == "D":
        return anonymizer.dummy_text if vr in DUMMY_BY_VR else anonymizer.dummy_value
    if action in ("U", "U*"):
        if vr == "SQ":
            return anonymizer.walk_sequence
        if vr == "UI":
            return anonymizer.replace_uids
        return anonymizer.refuse_non_uid
    return anonymizer.remove  # "C": Mica has no cleaning for free text, so it removes


@lru_cache(maxsize=None)  # one plan per profile in use: a handful
def plan_for(profile: Profile) -> dict[int, tuple]:
    """Tag -> (handler, VR) for the tags of this profile met so far, filled as files come."""
    return {}


def text_values(dataset: Dataset, tag: int) -> list[str]:
    """The values of a UI, DA, DT or TM element, read from the raw bytes when still raw.

    These VRs are plain ASCII whatever the character set (PS3.5 6.2), so reading them
    directly is exact and skips pydicom's general conversion, which dominates the cost of
    anonymizing a file. A value that is not ASCII is invalid: the file is quarantined.
    """
    element = dataset.get_item(tag)
    value = element.value
    if isinstance(element, RawDataElement):
        if value is None:
            return []
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            raise Quarantine(f"invalid value in {tag_label(tag)}: not ASCII") from None
        text = text.rstrip("\0 ")
        return [part.strip("\0 ") for part in text.split("\\")] if text else []
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return [str(part) for part in value]
    return [str(value)]


def ascii_values(dataset: Dataset, tag: int) -> list[str] | None:
    """The values of a number or code string, from the raw bytes when still raw; None if
    they are not ASCII (no number or code is)."""
    element = dataset.get_item(tag)
    value = element.value
    if isinstance(element, RawDataElement):
        if not value:
            return []
        try:
            text = value.decode("ascii")
        except UnicodeDecodeError:
            return None
        return [part.strip("\0 ") for part in text.rstrip("\0 ").split("\\")]
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return [str(part).strip() for part in value]
    return [str(value).strip()]


def decoded_strings(dataset: Dataset, tag: int) -> list[str]:
    """The values of a text element, decoded with the dataset's character set."""
    value = dataset[tag].value
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple, MultiValue)):
        return [str(part) for part in value]
    return [str(value)]


def set_values(dataset: Dataset, tag: int, vr: str, values: list[str]) -> None:
    """Replace an element by a new one with these values (one value stays a plain string)."""
    put(dataset, tag, vr, values[0] if len(values) == 1 else (values or ""))


# Text VRs whose ASCII values are the same bytes in every character set and byte order.
RAW_TEXT_VRS = frozenset({"AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC",
                          "UI", "UR", "UT"})


def put(dataset: Dataset, tag: int, vr: str, value) -> None:
    """Add or replace an element holding a value Mica made (see NO_VALIDATION).

    ASCII text (new UIDs, shifted dates, dummies, empty values: most of what Mica writes) is
    stored already encoded, as a raw element: pydicom writes it byte for byte instead of
    building and encoding a DataElement in every file; read back, it decodes as usual.
    """
    implicit, little = dataset.original_encoding
    if vr in RAW_TEXT_VRS and implicit is not None and little is not None:
        text = value if isinstance(value, str) else "\\".join(value) if isinstance(value, (list, tuple)) else None
        if text is not None and text.isascii():
            data = text.encode("ascii")
            if len(data) % 2:
                data += b"\0" if vr == "UI" else b" "
            dataset[tag] = RawDataElement(Tag(tag), vr, len(data), data, 0, implicit, little)
            return
    dataset[tag] = DataElement(tag, vr, value, validation_mode=NO_VALIDATION)


# VR of every public attribute, from pydicom's data dictionary, read once. The dictionary VR is
# used rather than the one in the file: a sender that wrote a person name or a sequence as UN
# still has it treated as what it is (pydicom converts UN to the dictionary VR on access).
PUBLIC_VR = {tag: entry[0] for tag, entry in DicomDictionary.items()}


def element_vr(dataset: Dataset, tag: int) -> str:
    """The VR of an element without decoding its value."""
    vr = PUBLIC_VR.get(tag)
    if vr:
        return vr
    return dataset.get_item(tag).VR or "UN"


def capped_age(age: str) -> str:
    age = age.strip()
    if len(age) == 4 and age[:3].isdigit() and age[3] == "Y" and int(age[:3]) > MAX_REPORTED_AGE_YEARS - 1:
        return f"{MAX_REPORTED_AGE_YEARS:03d}Y"
    return age


def dummy_value(element: DataElement):
    if element.VR in DUMMY_BY_VR:
        return DUMMY_BY_VR[element.VR]
    if element.VR in ("US", "SS", "UL", "SL", "FL", "FD", "UV", "SV"):
        return 0
    return element.empty_value


# --- Whole files --------------------------------------------------------------------------------

def read_dicom(path) -> Dataset:
    try:
        dataset = pydicom.dcmread(path, force=True)
    except Exception as error:
        raise Quarantine(f"not readable as DICOM ({type(error).__name__})") from None
    if len(dataset) == 0 and not dataset.file_meta:
        raise Quarantine("not readable as DICOM: no data elements found")
    return dataset


def transfer_syntax_of(dataset: Dataset) -> UID:
    syntax = dataset.file_meta.get("TransferSyntaxUID") if dataset.file_meta else None
    if syntax:
        return UID(syntax)
    implicit, little = dataset.original_encoding
    if implicit:
        return ImplicitVRLittleEndian
    return ExplicitVRLittleEndian if little else ExplicitVRBigEndian


def _int_value(dataset: Dataset, tag: int, default: int | None = None) -> int:
    value = peek_value(dataset, tag)
    if value in (None, ""):
        if default is None:
            raise Quarantine(f"image attribute {tag_label(tag)} is missing")
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Quarantine(f"invalid value in {tag_label(tag)}: not a number") from None


def check_decoded_pixel_count(dataset: Dataset, limit: int) -> None:
    rows, columns = _int_value(dataset, TAG_ROWS), _int_value(dataset, TAG_COLUMNS)
    frames = _int_value(dataset, TAG_NUMBER_OF_FRAMES, 1)
    if rows * columns * frames > limit:
        raise Quarantine(
            f"its pixels must be decoded to check for burned-in text, and {frames} frame(s) of "
            f"{columns}x{rows} are over the limit of {limit} decoded pixels (max_decoded_pixels)"
        )


def check_pixel_data_complete(dataset: Dataset, syntax: UID) -> None:
    """Quarantine images whose native Pixel Data is shorter than Rows x Columns says."""
    if syntax.is_compressed or TAG_PIXEL_DATA not in dataset:
        return
    rows, columns = _int_value(dataset, TAG_ROWS), _int_value(dataset, TAG_COLUMNS)
    samples = _int_value(dataset, TAG_SAMPLES_PER_PIXEL, 1)
    bits = _int_value(dataset, TAG_BITS_ALLOCATED)
    frames = _int_value(dataset, TAG_NUMBER_OF_FRAMES, 1)
    expected_bits = rows * columns * samples * bits * frames
    photometric = peek_value(dataset, TAG_PHOTOMETRIC_INTERPRETATION)
    if photometric is not None and str(photometric).strip() == "YBR_FULL_422":
        expected_bits = expected_bits * 2 // 3  # two chroma samples shared by two pixels
    actual = len(dataset.get_item(TAG_PIXEL_DATA).value or b"")  # the raw bytes: no decoding
    if actual * 8 < expected_bits:
        raise Quarantine(
            f"truncated: (7FE0,0010) PixelData holds {actual} bytes, "
            f"{(expected_bits + 7) // 8} expected for {frames} frame(s) of {rows}x{columns}"
        )


def anonymize_dicom_file(
    path,
    *,
    key: bytes,
    profile: Profile,
    keep_uid_map: bool = False,
    burned_in_rules=(),
    ocr: burned_in.OcrCheck | None = None,
    max_decoded_pixels: int | None = None,
) -> DicomResult:
    dataset = read_dicom(path)
    return anonymize_dataset(
        dataset, key=key, profile=profile, keep_uid_map=keep_uid_map,
        burned_in_rules=burned_in_rules, ocr=ocr, max_decoded_pixels=max_decoded_pixels,
    )


def anonymize_dataset(dataset: Dataset, **options) -> DicomResult:
    """Anonymize a dataset in place and return it with its new identifiers and its original
    ones (see _anonymize_dataset); a Quarantine raised carries the original ones too."""
    original = original_identifiers(dataset)
    try:
        result = _anonymize_dataset(dataset, **options)
    except Quarantine as error:
        error.original = original
        raise
    result.original = original
    return result


def _anonymize_dataset(
    dataset: Dataset,
    *,
    key: bytes,
    profile: Profile,
    keep_uid_map: bool = False,
    burned_in_rules=(),
    ocr: burned_in.OcrCheck | None = None,
    max_decoded_pixels: int | None = None,
) -> DicomResult:
    """Anonymize a dataset in place and return it with its new identifiers.

    `ocr`: the run's OCR check (None: no OCR); it reads the image, after any rule has
    cleaned it, as burned_in.ocr_scope says, and quarantines it when it finds text.

    `max_decoded_pixels`: pixels are decoded (burned-in cleaning, OCR) only when rows x
    columns x frames is at most this; otherwise the dataset is quarantined.

    Raises Quarantine, with the reason, when the dataset cannot be made safe; the dataset
    is then left half-processed and must not be written.
    """
    syntax = transfer_syntax_of(dataset)
    if syntax not in AllTransferSyntaxes:
        raise Quarantine("unsupported transfer syntax (not a standard DICOM transfer syntax)")
    if not any(tag in dataset for tag in PIXEL_DATA_TAGS):
        sop_class = str(peek_value(dataset, TAG_SOP_CLASS_UID) or "").strip()
        # Only a registry name is shown: any other value is the sender's text.
        what = f"SOP Class {UID_dictionary[sop_class][0]}" if sop_class in UID_dictionary else "this object"
        raise Quarantine(f"not an image: {what} has no Pixel Data (7FE0,0010)")
    for required in (TAG_SOP_INSTANCE_UID, TAG_STUDY_INSTANCE_UID, TAG_SERIES_INSTANCE_UID):
        if required not in dataset or not text_values(dataset, required):
            raise Quarantine(f"required attribute {tag_label(required)} is missing or empty")
    try:
        check_pixel_data_complete(dataset, syntax)
    except Quarantine:
        raise
    except Exception as error:
        raise Quarantine(f"Pixel Data cannot be read ({type(error).__name__})") from None

    risk = burned_in.burned_in_risk(dataset)
    series_uid = text_values(dataset, TAG_SERIES_INSTANCE_UID)[0]
    read_by_ocr = ocr is not None and ocr.wanted(burned_in.ocr_scope(dataset), series_uid)
    cleaned_pixels = False
    if (risk or read_by_ocr) and max_decoded_pixels is not None:
        check_decoded_pixel_count(dataset, max_decoded_pixels)
    if risk:
        rule = burned_in.find_rule(dataset, burned_in_rules)
        if rule is None:
            raise Quarantine(
                f"burned-in text: {risk}, and no cleaning rule matches "
                f"({burned_in.describe_image(dataset)}); review and add a rule"
            )
        clean_burned_in_pixels(dataset, rule.rectangles, syntax)
        cleaned_pixels = True
        syntax = transfer_syntax_of(dataset)
    if read_by_ocr:
        try:
            flag_text_by_ocr(dataset, syntax)
        except Quarantine:  # text, or pixels that cannot be read: read its series image by image
            ocr.record(series_uid, found_text=True)
            raise
        ocr.record(series_uid, found_text=False)

    jpeg_segments_removed = strip_encapsulated_metadata(dataset, syntax)

    identity = patient_identity(dataset)
    cleaner = DatasetAnonymizer(
        key, profile, keep_uid_map=keep_uid_map, shift_days=keys.date_shift_days(key, identity)
    )
    cleaner.sensitive_words = sensitive_words(dataset)
    cleaner.root, cleaner.write_encoding = dataset, (syntax.is_implicit_VR, syntax.is_little_endian)
    cleaner.clean(dataset)
    pseudonym = keys.patient_pseudonym(key, identity)
    finish(dataset, profile, pseudonym=pseudonym, cleaned_pixels=cleaned_pixels, syntax=syntax,
           dates_shifted=cleaner.actions["date shifted"] > 0)
    if cleaned_pixels:
        cleaner.actions["pixels cleaned (burned-in rule)"] += 1
    if read_by_ocr:
        cleaner.actions["pixels read by OCR"] += 1
    if jpeg_segments_removed:
        cleaner.actions["frame metadata removed (APPn, COM)"] += jpeg_segments_removed

    modality = str(peek_value(dataset, TAG_MODALITY) or "").strip() or None
    dataset.file_meta = new_file_meta(dataset, syntax)
    # The 128-byte preamble is free for applications to fill (PS3.10 7.1); dual-format files
    # keep a TIFF header there, with whatever it names. Written back as zeros.
    dataset.preamble = b"\0" * 128
    return DicomResult(
        dataset=dataset,
        patient_pseudonym=pseudonym,
        study_uid=text_values(dataset, TAG_STUDY_INSTANCE_UID)[0],
        series_uid=text_values(dataset, TAG_SERIES_INSTANCE_UID)[0],
        sop_instance_uid=text_values(dataset, TAG_SOP_INSTANCE_UID)[0],
        modality=modality,
        actions=cleaner.actions,
        uid_map=cleaner.uid_map,
    )


def sensitive_words(dataset: Dataset) -> tuple[str, ...]:
    """Name parts and IDs of this patient, to refuse descriptions that repeat them."""
    words = []
    for tag in (TAG_PATIENT_ID, 0x00080050, 0x00101000):  # PatientID, AccessionNumber, OtherPatientIDs
        value = peek_value(dataset, tag)
        words.extend(str(part).strip() for part in (value if isinstance(value, MultiValue) else [value or ""]))
    name = str(peek_value(dataset, TAG_PATIENT_NAME) or "")
    # Every part, short ones too: "Ng", "Li" and "O" are names.
    words.extend(part.strip() for part in re.split(r"[\^=\s,.]+", name))
    return tuple(word for word in words if word)  # a tuple: the text checks cache on it


def finish(dataset: Dataset, profile: Profile, *, pseudonym: str, cleaned_pixels: bool, syntax: UID,
           dates_shifted: bool) -> None:
    """Write the attributes that record what was done (PS3.15 E.1.1, PS3.3 C.7.1.1).

    `syntax` is the transfer syntax the file will be written in; `dates_shifted` whether a
    date of the file was shifted (the strict profile shifts the dates the table does not list).
    """
    codes = profile.method_codes()
    if cleaned_pixels:
        codes.insert(1, DCM_CLEAN_PIXEL_DATA)
        put(dataset, TAG_BURNED_IN_ANNOTATION, "CS", "NO")
    # Tags rather than keywords here: this runs once per file and keyword lookups add up.
    put(dataset, TAG_PATIENT_NAME, "PN", pseudonym)
    put(dataset, TAG_PATIENT_ID, "LO", pseudonym)
    put(dataset, TAG_PATIENT_IDENTITY_REMOVED, "CS", "YES")
    # LO holds 64 characters, so the method is written as several short values.
    put(dataset, TAG_DEIDENTIFICATION_METHOD, "LO",
        ["Mica anonymizer"] + [SHORT_METHOD_NAMES[value] for value, _ in codes])
    dataset[TAG_DEIDENTIFICATION_METHOD_CODE_SEQUENCE] = encoded_method_code_sequence(
        tuple(codes), syntax.is_implicit_VR, syntax.is_little_endian
    )
    put(dataset, TAG_LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED, "CS",
        "MODIFIED" if profile.retain_longitudinal_modified_dates or dates_shifted else "REMOVED")


def method_code_sequence(codes) -> Sequence:
    """DeidentificationMethodCodeSequence: one item per method code."""
    items = []
    for value, meaning in codes:
        item = Dataset()
        put(item, 0x00080100, "SH", value)  # CodeValue
        put(item, 0x00080102, "SH", "DCM")  # CodingSchemeDesignator
        put(item, 0x00080104, "LO", meaning)  # CodeMeaning
        items.append(item)
    return Sequence(items)


@lru_cache(maxsize=64)  # a few profiles x pixels cleaned or not x three encodings
def encoded_method_code_sequence(codes: tuple, implicit_vr: bool, little_endian: bool) -> RawDataElement:
    """The code sequence as a raw element, encoded once by pydicom for all files alike.

    pydicom writes a raw element byte for byte, as it does any sequence read from a file,
    while a sequence of new items costs about 150 us to write in every file; read in
    memory, the element decodes to method_code_sequence(codes) like any raw sequence.
    """
    element = DataElement(TAG_DEIDENTIFICATION_METHOD_CODE_SEQUENCE, "SQ", method_code_sequence(codes))
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = implicit_vr, little_endian
    write_sequence(buffer, element, [default_encoding])
    value = buffer.getvalue()
    return RawDataElement(
        Tag(TAG_DEIDENTIFICATION_METHOD_CODE_SEQUENCE), "SQ", len(value), value, 0, implicit_vr, little_endian
    )


def new_file_meta(dataset: Dataset, syntax: UID) -> FileMetaDataset:
    """A file meta group rebuilt from scratch: nothing of the sender's (AE titles) survives."""
    meta = FileMetaDataset()
    sop_class = text_values(dataset, TAG_SOP_CLASS_UID) if TAG_SOP_CLASS_UID in dataset else []
    if not sop_class:
        raise Quarantine(f"required attribute {tag_label(TAG_SOP_CLASS_UID)} is missing or empty")
    put(meta, 0x00020002, "UI", sop_class[0])  # MediaStorageSOPClassUID
    put(meta, 0x00020003, "UI", text_values(dataset, TAG_SOP_INSTANCE_UID)[0])  # ...InstanceUID
    put(meta, 0x00020010, "UI", syntax)  # TransferSyntaxUID
    put(meta, 0x00020012, "UI", PYDICOM_IMPLEMENTATION_UID)  # ImplementationClassUID
    put(meta, 0x00020013, "SH", MICA_IMPLEMENTATION_VERSION_NAME)  # ImplementationVersionName
    return meta


# Encapsulated frames are JPEG, JPEG-LS or JPEG 2000 codestreams: they can carry APPn segments
# (EXIF from cameras in visible-light images) and comments (COM). Those are stripped frame by
# frame, scans and packets untouched.
JPEG_FAMILY_TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51",  # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless, Non-Hierarchical (Process 14)
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, First-Order Prediction
}
JPEG_LS_TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
}
JPEG_2000_TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91",  # JPEG 2000 (lossless only, any)
    "1.2.840.10008.1.2.4.92", "1.2.840.10008.1.2.4.93",  # JPEG 2000 Part 2 multi-component
    "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202", "1.2.840.10008.1.2.4.203",  # HTJ2K
}
TAG_EXTENDED_OFFSET_TABLE = 0x7FE00001
TAG_EXTENDED_OFFSET_TABLE_LENGTHS = 0x7FE00002


def frame_stripper(syntax: UID):
    if syntax in JPEG_FAMILY_TRANSFER_SYNTAXES:
        return images.strip_jpeg
    if syntax in JPEG_LS_TRANSFER_SYNTAXES:
        return lambda frame: images.strip_jpeg(frame, jpeg_ls=True)
    if syntax in JPEG_2000_TRANSFER_SYNTAXES:
        return images.strip_j2k
    return None


def strip_encapsulated_metadata(dataset: Dataset, syntax: UID) -> int:
    """Remove APPn/COM segments from every frame; returns how many were removed.

    When something is removed the frames are encapsulated again, one fragment each, with
    the offset table the input had rewritten for the new sizes: an Extended Offset Table
    (7FE0,0001/0002) when present, else a Basic Offset Table when the input had one or holds
    several frames. A stale table would point decoders into the middle of a frame.
    """
    stripper = frame_stripper(syntax)
    if stripper is None or TAG_PIXEL_DATA not in dataset:
        return 0
    frames_expected = _int_value(dataset, TAG_NUMBER_OF_FRAMES, 1)
    has_extended = TAG_EXTENDED_OFFSET_TABLE in dataset
    try:
        pixel_data = dataset.PixelData
        extended = (
            (dataset[TAG_EXTENDED_OFFSET_TABLE].value, dataset[TAG_EXTENDED_OFFSET_TABLE_LENGTHS].value)
            if has_extended else None
        )
        frames = list(pydicom.encaps.generate_frames(
            pixel_data, number_of_frames=frames_expected, extended_offsets=extended
        ))
        had_basic_table = pixel_data[8:12] != b"\0\0\0\0"  # the BOT item's length
    except Exception as error:
        raise Quarantine(
            f"encapsulated (7FE0,0010) PixelData cannot be split into frames ({type(error).__name__})"
        ) from None
    stripped_frames, removed = [], 0
    for index, frame in enumerate(frames):
        try:
            stripped, count = stripper(frame)
        except images.ImageRejected as error:
            raise Quarantine(f"frame {index + 1} of (7FE0,0010) PixelData: {error}") from None
        stripped_frames.append(stripped)
        removed += count
    if removed:
        if has_extended:
            encapsulated, offsets, lengths = pydicom.encaps.encapsulate_extended(stripped_frames)
            dataset.PixelData = encapsulated
            put(dataset, TAG_EXTENDED_OFFSET_TABLE, "OV", offsets)
            put(dataset, TAG_EXTENDED_OFFSET_TABLE_LENGTHS, "OV", lengths)
        else:
            dataset.PixelData = pydicom.encaps.encapsulate(
                stripped_frames, has_bot=had_basic_table or len(frames) > 1
            )
    return removed


def clean_burned_in_pixels(dataset: Dataset, rectangles, syntax: UID) -> None:
    """Blank the rule's rectangles; compressed images are decompressed first."""
    give_syntax_for_decoding(dataset, syntax)
    try:
        if syntax.is_compressed:
            dataset.decompress()
        photometric = str(dataset.get("PhotometricInterpretation", "")).strip()
        if photometric.startswith("YBR"):
            raise Quarantine(
                f"burned-in text: cleaning {photometric} pixels is not supported; review by hand"
            )
        pixels = dataset.pixel_array.copy()
        burned_in.blank_rectangles(
            pixels,
            rectangles,
            rows=int(dataset.Rows),
            columns=int(dataset.Columns),
            frames=int(dataset.get("NumberOfFrames", 1) or 1),
            samples=int(dataset.get("SamplesPerPixel", 1) or 1),
        )
        dataset.PixelData = pixels.tobytes()
    except Quarantine:
        raise
    except Exception as error:
        raise Quarantine(
            f"burned-in text: a rule matches but the pixels cannot be decoded to clean them "
            f"({syntax.name}, {type(error).__name__})"
        ) from None


def give_syntax_for_decoding(dataset: Dataset, syntax: UID) -> None:
    """pydicom decodes pixels by the meta's transfer syntax: a bare data set (no meta) is
    given the one it was read in (the meta is rebuilt before writing anyway)."""
    if not (dataset.file_meta and "TransferSyntaxUID" in dataset.file_meta):
        dataset.file_meta = FileMetaDataset()
        dataset.file_meta.TransferSyntaxUID = syntax


def flag_text_by_ocr(dataset: Dataset, syntax: UID) -> None:
    from .preview import dataset_preview

    give_syntax_for_decoding(dataset, syntax)
    try:
        preview = dataset_preview(dataset, max_size=2048)
    except Exception as error:  # no decoder for this syntax, or pixels that do not decode
        raise Quarantine(
            f"burned-in text: the pixels cannot be decoded to be checked by OCR ({type(error).__name__})"
        ) from None
    words = burned_in.ocr_words(preview)
    if words:
        raise Quarantine(
            f"burned-in text: OCR read {len(words)} word(s) in the pixels; review the image"
        )
