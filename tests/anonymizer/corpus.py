"""A corpus generator: identifiers planted in every place issue 18 names, on real files.

`plant_identifiers(dataset)` adds to a dataset read from one of pydicom's test files the
identifying text that a removal list lets through: free text the Annex E table does not list
(top level and deep in sequences), URLs, AE titles, contact names, device ids, code meanings,
descriptions, waveform labels and data, overlay texts, retired elements, private slots of the
safe list holding text instead of numbers, dates the strict profile must not keep, and
non-ASCII names. It returns label -> planted value; `find_leaks` searches every byte of every
output for them (raw, UTF-16, inflated PNG chunks, the inflated body of deflated DICOM).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate_extended, generate_frames
from pydicom.tag import Tag
from pydicom.sequence import Sequence

from .helpers import encodings_of

NON_ASCII_NAME = "Łukasz Żółkiewski-Ñúñez"

# The five dates issue 18 found unshifted by the strict profile, with values planted nowhere else.
UNLISTED_DATES = {
    0x00402004: ("DA", "19770412"),  # IssueDateOfImagingServiceRequest
    0x00181204: ("DA", "19780513"),  # DateOfManufacture
    0x00189701: ("DT", "19790614101010"),  # DecayCorrectionDateTime
    0x00203403: ("DA", "19800715"),  # ModifiedImageDate (retired)
    0x0040A033: ("DT", "19810816111111"),  # ObservationStartDateTime
}


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def raw(dataset: Dataset, tag: int, vr: str, value: bytes) -> None:
    """Put bytes that pydicom would refuse to encode (an IS holding letters) as they are."""
    implicit, little = dataset.original_encoding
    dataset[tag] = RawDataElement(Tag(tag), vr, len(value), value, 0, bool(implicit), little is not False)


def plant_identifiers(dataset: Dataset) -> dict[str, str]:
    """Plant identifiers everywhere in `dataset` (in place); returns label -> value."""
    planted = {}

    def plant(label: str, value: str) -> str:
        planted[label] = value
        return value

    for keyword in ("StudyInstanceUID", "SeriesInstanceUID"):  # some test files lack them
        if keyword not in dataset:
            setattr(dataset, keyword, pydicom.uid.generate_uid(entropy_srcs=[keyword, str(dataset.SOPInstanceUID)]))
    dataset.SpecificCharacterSet = "ISO_IR 192"
    dataset.BurnedInAnnotation = "NO"  # this corpus is about metadata; pixels are tested elsewhere
    dataset.TextValue = plant("top-level TextValue", "TV-Nightingale said hello")
    dataset.UnformattedTextValue = plant("UnformattedTextValue", "UTV-Nightingale graphic note")
    dataset.CommentsOnTheScheduledProcedureStep = plant("scheduled step comments", "CSPS-call Nightingale")
    dataset.RetrieveURL = plant("RetrieveURL", "https://pacs.example.org/Nightingale-RURL")
    dataset.add_new(0x0074100A, "UR", plant("ContactURI", "tel:+1-555-0142-CURI"))
    dataset.RetrieveAETitle = plant("RetrieveAETitle", "PHIRETRIEVEAE")
    dataset.StationAETitle = plant("StationAETitle", "PHISTATIONAE")
    dataset.ContactDisplayName = plant("ContactDisplayName", "CDN-Nurse Ratched")
    dataset.DeviceID = plant("DeviceID", "DEVID-PPTH-0042")
    dataset.ProtocolName = plant("ProtocolName", "PN-Protocol for Nightingale")
    dataset.StudyDescription = plant("StudyDescription", "SD-Study Nightingale")
    dataset.SeriesDescription = plant("SeriesDescription", "SerD-Series Nightingale")
    dataset.PerformedProcedureStepDescription = plant("PPS description", "PPSD-Nightingale step")
    dataset.RequestedProcedureDescription = plant("requested procedure", "RPD-Nightingale request")
    dataset.ContentDescription = plant("non-ASCII name", NON_ASCII_NAME)
    dataset.add_new(0x00203100, "CS", plant("SourceImageIDs (retired)", "SRCIMGID NIGHT"))
    dataset.IssuerOfPatientID = plant("IssuerOfPatientID", "ISSUER-PPTH-HOSP")
    dataset.add_new(0x0072006A, "PN", plant("a PN the table omits", "SELECTORPN^WILSON"))

    # Deep in sequences: free text, a code meaning that is not clean, one its scheme defines.
    concept = _code("113100", "DCM", plant("altered known code meaning", "Basic profile Nightingale KCM"))
    region = _code("T-D3000", "SRT", plant("unknown code meaning", "Chest of Dr Quinzel UCM"))
    deep = Dataset()
    deep.TextValue = plant("deep TextValue", "DTV-Nightingale deep text")
    deep.ConceptNameCodeSequence = Sequence([concept])
    deep.PurposeOfReferenceCodeSequence = Sequence([region])
    source = Dataset()
    source.ReferencedSOPClassUID = dataset.SOPClassUID
    source.ReferencedSOPInstanceUID = dataset.SOPInstanceUID
    source.DerivationCodeSequence = Sequence([deep])
    dataset.SourceImageSequence = Sequence([source])

    # SR-like content, three levels deep: text, a person, a date-time, a code meaning.
    leaf = Dataset()
    leaf.ValueType = "TEXT"
    leaf.RelationshipType = "CONTAINS"
    leaf.TextValue = plant("SR leaf TextValue", "SRLEAF-Nightingale findings")
    leaf.PersonName = plant("SR PersonName", "SRPERSON^Quinzel")
    leaf.ConceptNameCodeSequence = Sequence([_code("121071", "DCM", plant("SR code meaning", "Finding by Quinzel SRCM"))])
    middle = Dataset()
    middle.ValueType = "CONTAINER"
    middle.RelationshipType = "CONTAINS"
    middle.ContentSequence = Sequence([leaf])
    middle.UnformattedTextValue = plant("SR middle text", "SRMID-" + NON_ASCII_NAME)
    dataset.ContentSequence = Sequence([middle])
    dataset.AnatomicRegionSequence = Sequence([_code("T-D3000", "SRT", "Chest")])

    # Waveform: channel labels, data and annotations.
    channel = Dataset()
    channel.ChannelLabel = plant("waveform channel label", "CHL-Nightingale")
    channel.ChannelSourceSequence = Sequence([_code("5.6.3-9-1", "SCPECG", "Lead I (Einthoven)")])
    waveform = Dataset()
    waveform.ChannelDefinitionSequence = Sequence([channel])
    waveform.NumberOfWaveformChannels = 1
    waveform.NumberOfWaveformSamples = 8
    waveform.WaveformBitsAllocated = 16
    waveform.WaveformSampleInterpretation = "SS"
    waveform.add_new(0x54001010, "OW", plant("waveform data", "WFD-Nightingale!").encode())
    dataset.WaveformSequence = Sequence([waveform])
    annotation = Dataset()
    annotation.UnformattedTextValue = plant("waveform annotation", "WFA-Nightingale fainted")
    dataset.WaveformAnnotationSequence = Sequence([annotation])

    # Repeating groups and retired elements.
    dataset.add_new(0x60000022, "LO", plant("overlay description", "OVD-Nightingale"))
    dataset.add_new(0x60000045, "LO", plant("overlay subtype", "OVS-Nightingale"))
    dataset.add_new(0x60001500, "LO", plant("overlay label", "OVL-Nightingale"))
    dataset.add_new(0x7F020010, "OB", plant("VariablePixelData", "VPD-Nightingale-").encode())
    dataset.add_new(0x601E0022, "LO", plant("overlay description, last group", "OVD1E-Nightingale"))
    dataset.add_new(0x50000022, "LO", plant("curve description (retired)", "CURVE-Nightingale"))
    dataset.add_new(0x00104000, "LT", plant("PatientComments", "PCOM-" + NON_ASCII_NAME))

    # Safe-list private slots holding text instead of numbers; one real number stays.
    siemens = dataset.private_block(0x0019, "SIEMENS MR HEADER", create=True)
    raw(dataset, siemens.get_tag(0x0C), "IS", plant("IS slot holding letters", "ISLETTERSAB").encode())
    raw(dataset, siemens.get_tag(0x0E), "FD", plant("FD slot holding text", "FD-Nightingale-24bytes!!").encode())
    siemens.add_new(0x27, "UN", plant("UN slot holding text", "UN-Nightingale-B-matrix-48-bytes-of-pure-text!!!").encode())
    siemens.add_new(0x0D, "CS", "DIRECTIONAL")
    philips = dataset.private_block(0x2001, "Philips Imaging DD 001", create=True)
    raw(dataset, philips.get_tag(0x03), "FL", plant("FL slot holding text", "FLPH").encode())
    gems = dataset.private_block(0x0043, "GEMS_PARM_01", create=True)
    gems.add_new(0x39, "UN", plant("DS slot as UN with letters", "GEDS Nightingale").encode())
    good = dataset.private_block(0x2005, "Philips MR Imaging DD 001", create=True)
    good.add_new(0xB0, "FL", 0.5)

    for tag, (vr, value) in UNLISTED_DATES.items():
        dataset.add_new(tag, vr, plant(f"unlisted date {tag:08X}", value))

    if dataset.file_meta is not None:
        dataset.file_meta.SourceApplicationEntityTitle = plant("meta AE title", "PHIMETAAE")
    return planted


JPEG_LS_SYNTAXES = {"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"}
JPEG_2000_SYNTAXES = {"1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91"}


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", marker, len(payload) + 2) + payload


def plant_in_frames(dataset: Dataset) -> dict[str, str]:
    """Comments and APPn segments inside JPEG-LS frames, comments inside JPEG 2000 codestreams
    (main header and tile-part header), with an Extended Offset Table; label -> value."""
    syntax = dataset.file_meta.TransferSyntaxUID
    if syntax not in JPEG_LS_SYNTAXES | JPEG_2000_SYNTAXES:
        return {}
    frames = list(generate_frames(dataset.PixelData, number_of_frames=int(dataset.get("NumberOfFrames", 1) or 1)))
    if syntax in JPEG_LS_SYNTAXES:
        planted = {"JPEG-LS COM": "JLSCOM-Nightingale", "JPEG-LS APP1": "JLSAPP-Nightingale"}
        frames = [frame[:2] + _segment(0xFFFE, planted["JPEG-LS COM"].encode())
                  + _segment(0xFFE1, planted["JPEG-LS APP1"].encode()) + frame[2:] for frame in frames]
    else:
        planted = {"JPEG 2000 main COM": "J2KMAIN-Nightingale", "JPEG 2000 tile COM": "J2KTILE-Nightingale"}
        planted_frames = []
        for frame in frames:
            (siz_length,) = struct.unpack(">H", frame[4:6])
            frame = (frame[: 4 + siz_length] + _segment(0xFF64, b"\x00\x01" + planted["JPEG 2000 main COM"].encode())
                     + frame[4 + siz_length :])
            sot = frame.index(b"\xff\x90")
            tile = _segment(0xFF64, b"\x00\x01" + planted["JPEG 2000 tile COM"].encode())
            (psot,) = struct.unpack(">I", frame[sot + 6 : sot + 10])
            frame = (frame[: sot + 6] + struct.pack(">I", psot + len(tile)) + frame[sot + 10 : sot + 12] + tile
                     + frame[sot + 12 :])
            planted_frames.append(frame)
        frames = planted_frames
    dataset.PixelData, dataset.ExtendedOffsetTable, dataset.ExtendedOffsetTableLengths = encapsulate_extended(frames)
    return planted


def searchable_bytes(path: Path) -> list[bytes]:
    """The bytes of a file as written, and inflated where it is compressed."""
    data = path.read_bytes()
    found = [data]
    if data[128:132] == b"DICM":
        meta = pydicom.dcmread(path, stop_before_pixels=True)
        if meta.file_meta.TransferSyntaxUID == pydicom.uid.DeflatedExplicitVRLittleEndian:
            body_start = 132 + 12 + meta.file_meta.FileMetaInformationGroupLength
            found.append(zlib.decompressobj(-zlib.MAX_WBITS).decompress(data[body_start:]))
    if data.startswith(b"\x89PNG"):
        position, idat = 8, b""
        while position + 8 <= len(data):
            (length,) = struct.unpack(">I", data[position : position + 4])
            kind, payload = data[position + 4 : position + 8], data[position + 8 : position + 8 + length]
            if kind == b"IDAT":
                idat += payload
            elif kind in (b"zTXt", b"iCCP", b"iTXt"):
                start = payload.index(b"\0") + 2
                try:
                    found.append(zlib.decompress(payload[start:]))
                except zlib.error:
                    found.append(payload)
            position += 12 + length
        if idat:
            found.append(zlib.decompress(idat))
    return found


def find_leaks(out: Path, planted: dict[str, str]) -> list[str]:
    leaks = []
    for path in sorted(p for p in out.rglob("*") if p.is_file()):
        blobs = searchable_bytes(path)
        for label, value in planted.items():
            if any(encoded in blob for blob in blobs for encoded in encodings_of(value)):
                leaks.append(f"{label} in {path.relative_to(out)}")
    return leaks
