"""Writing an anonymized dataset: the bytes pydicom writes, without its cost per element.

After cleaning, most elements of a dataset are still raw, in the encoding the file is written
in: kept elements are never decoded, and settled ones (dicom.DatasetAnonymizer.settle) were
encoded once for the whole run. pydicom's writer sends each of them through its general path
(a buffer per element, the tag, VR and length written one call each, the file meta copied and
validated twice): that was a third of an anonymized file's time. `write_file` writes such an
element, and pixel data, as a header and the bytes, and leaves every other element to
pydicom's own element writer, so that the file is the same, byte for byte
(tests/anonymizer/test_writer.py compares them).
"""

from __future__ import annotations

import struct

from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import validate_file_meta, write_data_element
from pydicom.tag import tag_in_exception
from pydicom.uid import AllTransferSyntaxes, DeflatedExplicitVRLittleEndian
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32

UNDEFINED_LENGTH = 0xFFFFFFFF
TAG_FILE_META_GROUP_LENGTH = 0x00020000
# Element headers: tag (group, element), then the VR and the length. Implicit VR is always
# little endian; explicit VR headers by little endian or not.
IMPLICIT_HEADER = struct.Struct("<HHL")
EXPLICIT_SHORT_HEADERS = {True: struct.Struct("<HH2sH"), False: struct.Struct(">HH2sH")}
EXPLICIT_LONG_HEADERS = {True: struct.Struct("<HH2s2xL"), False: struct.Struct(">HH2s2xL")}
EXPLICIT_VR_LENGTH_32_BYTES = frozenset(vr.encode("ascii") for vr in EXPLICIT_VR_LENGTH_32)
# Values pydicom writes as they are (an even number of bytes, no byte swapping).
BYTES_VRS = frozenset({"OB", "OW", "UN"})


def write_file(handle, dataset: Dataset) -> None:
    """Write `dataset` to the binary file `handle`, exactly as
    ``dataset.save_as(handle, enforce_file_format=True)`` would.

    The fast path needs what Mica's datasets have: a file meta naming a standard transfer
    syntax that is not deflated, and elements read in that encoding and character set (else
    pydicom converts every element while writing, which only pydicom does right). Like
    dcmwrite, it fills the file meta's Media Storage UIDs from the dataset, completes and
    validates the meta, and sets Pixel Data's undefined length by the syntax; it does so on
    the dataset's own file meta rather than a copy, as Mica builds one for each file.
    """
    meta = getattr(dataset, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta else None
    preamble = getattr(dataset, "preamble", None) or b"\0" * 128
    if (
        syntax not in AllTransferSyntaxes
        or syntax == DeflatedExplicitVRLittleEndian
        or len(preamble) != 128
        or dataset.original_encoding != (syntax.is_implicit_VR, syntax.is_little_endian)
        or dataset.original_character_set != dataset._character_set
        or any(tag >> 16 in (0, 2) for tag in dataset._dict)  # dcmwrite refuses these: let it say why
    ):
        dataset.save_as(handle, enforce_file_format=True)
        return
    for meta_keyword, keyword in (("MediaStorageSOPClassUID", "SOPClassUID"),
                                  ("MediaStorageSOPInstanceUID", "SOPInstanceUID")):
        in_dataset = dataset.get(keyword, None)
        if meta.get(meta_keyword, None) is None or (in_dataset and in_dataset != meta.get(meta_keyword)):
            setattr(meta, meta_keyword, in_dataset)
    validate_file_meta(meta, enforce_standard=True)  # adds the version and implementation, or raises
    if "PixelData" in dataset:
        dataset["PixelData"].is_undefined_length = syntax.is_compressed

    encode = ElementEncoder(syntax.is_implicit_VR, syntax.is_little_endian,
                            dataset.get("SpecificCharacterSet", default_encoding))
    parts = [preamble, b"DICM", encoded_file_meta(meta)]
    for tag in sorted(dataset._dict):
        if tag & 0xFFFF == 0 and tag >> 16 > 6:
            continue  # retired group lengths are not written (PS3.5 7.2), as in pydicom
        parts.append(encode(dataset.get_item(tag)))
    handle.writelines(parts)


def encoded_file_meta(meta: FileMetaDataset) -> bytes:
    """The file meta group, explicit VR little endian, led by its group length: what
    pydicom's write_file_meta_info writes for a validated meta."""
    encode = ElementEncoder(implicit=False, little=True, character_sets=default_encoding)
    body = b"".join(encode(meta.get_item(tag)) for tag in sorted(meta._dict) if tag != TAG_FILE_META_GROUP_LENGTH)
    group_length = EXPLICIT_SHORT_HEADERS[True].pack(0x0002, 0x0000, b"UL", 4) + struct.pack("<L", len(body))
    return group_length + body


class ElementEncoder:
    """One data element's bytes in a file's encoding: a raw element, or a value of bytes, as
    its header and value; any other through pydicom's element writer."""

    def __init__(self, implicit: bool, little: bool, character_sets):
        self.implicit, self.little, self.character_sets = implicit, little, character_sets
        self.short_header, self.long_header = EXPLICIT_SHORT_HEADERS[little], EXPLICIT_LONG_HEADERS[little]

    def __call__(self, element: DataElement | RawDataElement) -> bytes:
        header = self.header(element)
        if header is None:
            return self.encoded_by_pydicom(element)
        return header + element.value

    def header(self, element) -> bytes | None:
        """The header of an element written as its bytes, or None when pydicom must write it."""
        value = element.value
        if not isinstance(value, bytes) or element.is_buffered:
            return None
        if element.is_raw:
            if element.length == UNDEFINED_LENGTH:
                return None  # a sequence or encapsulated pixels: delimiters and checks
        elif element.VR not in BYTES_VRS or element.is_undefined_length or len(value) % 2:
            return None
        tag, length = element.tag, len(value)
        if self.implicit:
            return IMPLICIT_HEADER.pack(tag >> 16, tag & 0xFFFF, length)
        vr = element.VR
        if not isinstance(vr, str) or len(vr) != 2:
            return None  # pydicom refuses an ambiguous or missing VR, and says why
        vr = vr.encode("ascii")
        if vr in EXPLICIT_VR_LENGTH_32_BYTES:
            return self.long_header.pack(tag >> 16, tag & 0xFFFF, vr, length)
        if length > 0xFFFF:
            return None  # too long for its VR: pydicom writes it as UN, with a warning
        return self.short_header.pack(tag >> 16, tag & 0xFFFF, vr, length)

    def encoded_by_pydicom(self, element) -> bytes:
        with tag_in_exception(element.tag):
            return element_bytes(element, self.implicit, self.little, self.character_sets)


def element_bytes(element, implicit: bool, little: bool, character_sets) -> bytes:
    """The element as pydicom's element writer encodes it (it raises as that writer does)."""
    buffer = DicomBytesIO()
    buffer.is_implicit_VR, buffer.is_little_endian = implicit, little
    write_data_element(buffer, element, character_sets)
    return buffer.getvalue()
