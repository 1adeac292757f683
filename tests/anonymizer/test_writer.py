"""`anonymizer.writer.write_file` writes what pydicom writes, byte for byte.

Mica writes every anonymized dataset through write_file, which writes raw elements and pixel
data as a header and their bytes and leaves the rest to pydicom. It must give exactly the
bytes of ``dataset.save_as(handle, enforce_file_format=True)``. Compared on every DICOM file
pydicom ships (implicit, explicit and big-endian encodings, deflated, encapsulated JPEG, JPEG-LS,
JPEG 2000 and RLE pixels, sequences of defined and undefined length, private tags, character
sets), as read and after anonymization, on the PHI corpus, and on the elements the fast path
must leave to pydicom: a short-VR value over 64 KiB (written as UN), an odd-length OB value
(padded), a raw element without a VR (refused).
"""

from __future__ import annotations

import copy
import io
import warnings
from pathlib import Path

import pydicom
import pytest
import pydicom.data
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.tag import Tag
from pydicom.uid import ExplicitVRLittleEndian

from anonymizer import dicom, writer
from anonymizer.profile import get_profile

from .helpers import output_files


def pydicom_bytes(dataset: Dataset) -> bytes | type:
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            copy.deepcopy(dataset).save_as(buffer, enforce_file_format=True)
    except Exception as error:
        return type(error)
    return buffer.getvalue()


def mica_bytes(dataset: Dataset) -> bytes | type:
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            writer.write_file(buffer, copy.deepcopy(dataset))
    except Exception as error:
        return type(error)
    return buffer.getvalue()


def shipped_dicom_files() -> list[Path]:
    """The test files inside the installed pydicom (never the ones it downloads on demand)."""
    folder = Path(pydicom.data.__file__).parent / "test_files"
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.suffix.lower() in ("", ".dcm"))


def readable(path: Path) -> Dataset | None:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = pydicom.dcmread(path, force=True)
    except Exception:
        return None
    return dataset if len(dataset) else None


def test_every_shipped_file_is_written_as_pydicom_writes_it(key, monkeypatch):
    fallbacks = []
    save_as = Dataset.save_as
    monkeypatch.setattr(Dataset, "save_as", lambda self, *args, **kwargs: (fallbacks.append(1), save_as(self, *args, **kwargs))[1])
    compared, anonymized, different = 0, 0, []
    profile = get_profile("basic")
    for path in shipped_dicom_files():
        dataset = readable(path)
        if dataset is None:
            continue
        # As read: most keep the sender's file meta, or have none.
        expected = pydicom_bytes(dataset)
        fallbacks.clear()
        if mica_bytes(dataset) != expected:
            different.append(f"{path.name} as read")
        compared += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                result = dicom.anonymize_dataset(copy.deepcopy(dataset), key=key, profile=profile)
        except dicom.Quarantine:
            continue
        expected = pydicom_bytes(result.dataset)
        assert isinstance(expected, bytes), path.name  # Mica wrote it before: it must still
        fallbacks.clear()
        if mica_bytes(result.dataset) != expected:
            different.append(f"{path.name} anonymized")
        anonymized += 0 if fallbacks else 1
    assert different == []
    assert compared > 80
    assert anonymized > 40  # anonymized files that took the fast path (not pydicom's writer)


def test_the_phi_corpus_outputs_are_written_as_pydicom_writes_them(phi_run):
    written = [path for path in output_files(phi_run["out"]) if path.suffix == ".dcm"]
    assert len(written) >= 8
    for path in written:
        # Read back and written again: the same bytes either way, and the same as the output.
        dataset = pydicom.dcmread(path)
        assert mica_bytes(dataset) == pydicom_bytes(dataset) == path.read_bytes(), path.name


def _dataset_with(*elements) -> Dataset:
    dataset = Dataset()
    for element in elements:
        dataset[element.tag] = element
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    dataset.SOPInstanceUID = "2.25.1"
    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    dataset.set_original_encoding(False, True, "ISO_IR 6")
    return dataset


@pytest.mark.parametrize("element", [
    # A short-VR raw value over 64 KiB: pydicom writes it as UN (with a warning).
    RawDataElement(Tag(0x00081030), "LO", 70_000, b"A" * 70_000, 0, False, True),
    # Odd-length OB: pydicom pads it with a zero byte.
    DataElement(0x00091010, "OB", b"abc"),
    # Raw, undefined length (a sequence as read): pydicom writes its delimiter.
    RawDataElement(Tag(0x00081110), "SQ", 0xFFFFFFFF, b"", 0, False, True),
    # No VR in an explicit-VR file: pydicom refuses it, and so must Mica.
    RawDataElement(Tag(0x00081030), None, 4, b"ABCD", 0, False, True),
    # A decoded text element: written by pydicom's writer.
    DataElement(0x00081030, "LO", "STUDY"),
])
def test_elements_the_fast_path_leaves_to_pydicom(element):
    dataset = _dataset_with(element)
    assert mica_bytes(dataset) == pydicom_bytes(dataset)
