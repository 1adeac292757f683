"""Values read without converting the stored element, cached key derivations, the raw code sequence."""

from __future__ import annotations

import io

import pydicom
import pytest
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import ExplicitVRLittleEndian

from anonymizer import burned_in, keys
from anonymizer.dicom import encoded_method_code_sequence, method_code_sequence
from anonymizer.elements import peek_value
from anonymizer.profile import PROFILES


def _read_back(dataset: Dataset) -> Dataset:
    """The dataset as pydicom reads it from a file: every element raw."""
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.2"  # CT Image Storage
    dataset.SOPInstanceUID = "1.2.3.4"
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return pydicom.dcmread(buffer)


def test_peek_value_decodes_without_converting_the_stored_element():
    source = Dataset()
    source.Rows = 512
    source.ImageType = ["DERIVED", "SECONDARY", "SCREEN SAVE"]
    source.Modality = "OT"
    dataset = _read_back(source)

    assert peek_value(dataset, 0x00280010) == 512
    assert list(peek_value(dataset, 0x00080008)) == ["DERIVED", "SECONDARY", "SCREEN SAVE"]
    assert peek_value(dataset, 0x00100010) is None
    for tag in (0x00280010, 0x00080008):
        assert isinstance(dataset.get_item(tag), RawDataElement)


def test_screen_save_is_found_in_a_raw_image_type_of_one_or_several_values():
    for image_type in ("SCREEN SAVE", ["DERIVED", "SECONDARY", "SCREEN SAVE"]):
        source = Dataset()
        source.Modality = "CT"
        source.ImageType = image_type
        dataset = _read_back(source)
        assert burned_in.burned_in_risk(dataset) == "ImageType SCREEN SAVE commonly carries burned-in text"
    source = Dataset()
    source.Modality = "CT"
    source.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    assert burned_in.burned_in_risk(_read_back(source)) is None


def test_cached_derivations_match_for_bytes_and_bytearray_keys():
    key = bytes(range(32))
    first = keys.keyed_uid(key, "1.2.3.4")
    assert keys.keyed_uid(bytearray(key), "1.2.3.4") == first
    assert keys.keyed_uid(bytes(32), "1.2.3.4") != first
    assert keys.patient_pseudonym(bytearray(key), "id:X") == keys.patient_pseudonym(key, "id:X")


@pytest.mark.parametrize("implicit_vr, little_endian", [(True, True), (False, True), (False, False)])
def test_the_pre_encoded_code_sequence_is_what_pydicom_writes_and_reads(implicit_vr, little_endian):
    codes = tuple(PROFILES["basic"].method_codes())
    raw = encoded_method_code_sequence(codes, implicit_vr, little_endian)

    def written(element) -> bytes:
        dataset = Dataset()
        dataset[element.tag] = element
        dataset.set_original_encoding(implicit_vr, little_endian, None)
        buffer = DicomBytesIO()
        buffer.is_implicit_VR, buffer.is_little_endian = implicit_vr, little_endian
        write_dataset(buffer, dataset)
        return buffer.getvalue()

    built = DataElement(raw.tag, "SQ", method_code_sequence(codes))
    assert written(raw) == written(built)
    holder = Dataset()
    holder[raw.tag] = raw
    decoded = holder[raw.tag].value
    assert [(item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning) for item in decoded] == [
        (value, "DCM", meaning) for value, meaning in codes
    ]
