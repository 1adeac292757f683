"""Reading an element's value without changing how the dataset stores it."""

from __future__ import annotations

from pydicom.dataelem import RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset


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
    if isinstance(element, RawDataElement):
        element = convert_raw_data_element(element, encoding=dataset.original_character_set, ds=dataset)
    return element.value
