"""Reading an element's value without changing how the dataset stores it."""

from __future__ import annotations

from pydicom.datadict import DicomDictionary
from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset

# Values decoded so far in this process, keyed on everything the decoding depends on (tag,
# raw bytes, byte order, VR encoding, character sets): the slices of a series repeat most
# values read to decide (geometry, flags, identifiers of the patient and series), and
# pydicom's general conversion is by far the dearest part of reading one. The values are
# only read, never changed, by Mica.
PEEKED: dict[tuple, object] = {}
MAX_PEEKED = 4096
MAX_PEEKED_BYTES = 1024


def _cacheable(tag: int) -> bool:
    """Public tags whose dictionary VR is one VR: their decoding needs nothing else of the
    dataset (private tags need their creator, US-or-SS ones the pixel representation);
    sequences are not kept (they hold datasets)."""
    entry = DicomDictionary.get(tag)
    return entry is not None and " " not in entry[0] and entry[0] != "SQ" and not (tag >> 16) % 2


CACHEABLE = {tag for tag in DicomDictionary if _cacheable(tag)}


def peek_value(dataset: Dataset, tag: int):
    """The decoded value of an element, or None when the dataset lacks it.

    `dataset.get(tag)` would replace a raw element by its decoded form, which pydicom must
    then encode again when the file is written; a copy is decoded here instead, so an
    element that is only read stays raw and is written back byte for byte. Meant for VRs
    with one meaning (CS, US, IS, UI...), not for the US/SS ones pydicom disambiguates.
    """
    element = dataset.get_item(tag)
    if element is None:
        return None
    if not isinstance(element, RawDataElement):
        return element.value
    key = None
    if tag in CACHEABLE and element.value is not None and len(element.value) <= MAX_PEEKED_BYTES:
        key = (tag, element.VR, element.value, element.is_implicit_VR, element.is_little_endian,
               str(dataset.original_character_set))
        if key in PEEKED:
            return PEEKED[key]
    value = convert_raw_data_element(element, encoding=dataset.original_character_set, ds=dataset).value
    if key is not None:
        if len(PEEKED) >= MAX_PEEKED:
            PEEKED.clear()
        PEEKED[key] = value
    return value
