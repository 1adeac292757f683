"""Encodings and containers: preamble, JPEG frames inside Pixel Data, deflate, big endian."""

from __future__ import annotations

import io
import struct

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file
from pydicom.encaps import encapsulate, encapsulate_extended, generate_frames
from pydicom.uid import DeflatedExplicitVRLittleEndian, JPEGBaseline8Bit

import anonymizer
from anonymizer import synthetic


def test_the_preamble_is_zeroed(tmp_path):
    (path,) = synthetic.write_ct_series(tmp_path / "src", n_slices=1, size=16)
    data = bytearray(path.read_bytes())
    data[:32] = b"II*\0 TIFF of NIGHTINGALE FLORE"[:32].ljust(32, b"\0")
    path.write_bytes(bytes(data))
    report = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "out", key=bytes(32))
    output = (tmp_path / "out" / report.files[0].output).read_bytes()
    assert output[:128] == b"\0" * 128 and b"NIGHTINGALE" not in output


def test_comments_and_exif_inside_jpeg_frames_are_removed_and_pixels_kept(tmp_path):
    (path,) = synthetic.write_ct_series(tmp_path / "make", n_slices=1, size=32, plant_phi=False)
    dataset = pydicom.dcmread(path)
    pixels = np.random.default_rng(5).integers(0, 255, size=(32, 32), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x013B] = "EXIF NIGHTINGALE"
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95, comment=b"COM NIGHTINGALE", exif=exif.tobytes())
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 8, 8, 7, 0
    del dataset.RescaleIntercept
    dataset.PixelData = encapsulate([buffer.getvalue()])
    dataset["PixelData"].VR = "OB"
    dataset.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    (tmp_path / "src").mkdir()
    dataset.save_as(tmp_path / "src" / "jpeg.dcm")
    report = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "out", key=bytes(32))
    (outcome,) = report.files
    assert outcome.status == "anonymized", outcome.reason
    output = tmp_path / "out" / outcome.output
    assert b"NIGHTINGALE" not in output.read_bytes()
    assert report.action_counts["frame metadata removed (APPn, COM)"] >= 2
    result, original = pydicom.dcmread(output), pydicom.dcmread(tmp_path / "src" / "jpeg.dcm")
    assert result.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert np.array_equal(result.pixel_array, original.pixel_array)


def test_deflated_and_big_endian_files_are_written_in_their_own_syntax(tmp_path):
    (path,) = synthetic.write_ct_series(tmp_path / "src", n_slices=1, size=16, file_names="plain.dcm")
    dataset = pydicom.dcmread(path)
    dataset.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    dataset.SOPInstanceUID = dataset.SOPInstanceUID + ".9"
    dataset.save_as(tmp_path / "src" / "deflated.dcm", enforce_file_format=True)
    report = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "out", key=bytes(32))
    by_source = {o.private_source: o for o in report.files}
    assert by_source["deflated.dcm"].status == "anonymized", by_source["deflated.dcm"].reason
    result = pydicom.dcmread(tmp_path / "out" / by_source["deflated.dcm"].output)
    assert result.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian
    assert result.PixelData == dataset.PixelData


def test_a_file_without_preamble_or_meta_is_read(tmp_path):
    (path,) = synthetic.write_ct_series(tmp_path / "make", n_slices=1, size=16)
    dataset = pydicom.dcmread(path)
    dataset.file_meta = pydicom.dataset.FileMetaDataset()  # no meta, no preamble: a bare data set
    dataset.preamble = None
    (tmp_path / "src").mkdir()
    dataset.save_as(tmp_path / "src" / "IMG0001", implicit_vr=True, little_endian=True, enforce_file_format=False)
    raw = (tmp_path / "src" / "IMG0001").read_bytes()
    assert raw[128:132] != b"DICM"
    report = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "out", key=bytes(32))
    (outcome,) = report.files
    assert outcome.status == "anonymized", outcome.reason
    result = pydicom.dcmread(tmp_path / "out" / outcome.output)
    assert result.file_meta.TransferSyntaxUID == pydicom.uid.ImplicitVRLittleEndian


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", marker, len(payload) + 2) + payload


def _jpeg_ls_frame_with_metadata(frame: bytes, index: int) -> bytes:
    """A JPEG-LS frame with a comment and an APP1 segment before its frame header."""
    return (frame[:2] + _segment(0xFFFE, f"COM JLS Nightingale {index}".encode())
            + _segment(0xFFE1, b"Exif\0\0JLS Nightingale") + frame[2:])


def _j2k_frame_with_comments(frame: bytes) -> bytes:
    """A JPEG 2000 codestream with a comment in its main header and in its tile-part header."""
    comment = _segment(0xFF64, b"\x00\x01COM J2K main Nightingale")
    tile_comment = _segment(0xFF64, b"\x00\x01COM J2K tile Nightingale")
    (siz_length,) = struct.unpack(">H", frame[4:6])
    frame = frame[: 4 + siz_length] + comment + frame[4 + siz_length :]
    sot = frame.index(b"\xff\x90")
    (psot,) = struct.unpack(">I", frame[sot + 6 : sot + 10])
    new_sot = frame[sot : sot + 6] + struct.pack(">I", psot + len(tile_comment)) + frame[sot + 10 : sot + 12]
    return frame[:sot] + new_sot + tile_comment + frame[sot + 12 :]


@pytest.mark.parametrize("name, offsets", [
    ("MR_small_jpeg_ls_lossless.dcm", "extended"),
    ("MR_small_jp2klossless.dcm", "extended"),
    ("MR_small_jp2klossless.dcm", "basic"),
])
def test_comments_inside_jpeg_ls_and_jpeg_2000_frames_are_removed_and_offsets_rewritten(tmp_path, name, offsets):
    dataset = pydicom.dcmread(get_testdata_file(name))
    original_pixels = dataset.pixel_array
    (frame,) = generate_frames(dataset.PixelData, number_of_frames=1)
    if "jpeg_ls" in name:
        frames = [_jpeg_ls_frame_with_metadata(frame, index) for index in range(3)]
    else:
        frames = [_j2k_frame_with_comments(frame) for _ in range(3)]
    dataset.NumberOfFrames = 3
    if offsets == "extended":
        dataset.PixelData, dataset.ExtendedOffsetTable, dataset.ExtendedOffsetTableLengths = (
            encapsulate_extended(frames))
    else:
        dataset.PixelData = encapsulate(frames, has_bot=True)
    (tmp_path / "src").mkdir()
    dataset.save_as(tmp_path / "src" / "frames.dcm")
    assert b"Nightingale" in (tmp_path / "src" / "frames.dcm").read_bytes()

    report = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "out", key=bytes(32))

    (outcome,) = report.files
    assert outcome.status == "anonymized", outcome.reason
    output = tmp_path / "out" / outcome.output
    assert b"Nightingale" not in output.read_bytes()
    result = pydicom.dcmread(output)
    assert result.file_meta.TransferSyntaxUID == dataset.file_meta.TransferSyntaxUID
    assert ("ExtendedOffsetTable" in result) == (offsets == "extended")
    decoded = result.pixel_array  # decodes through the rewritten offset table
    assert decoded.shape == (3, *original_pixels.shape)
    for index in range(3):
        assert np.array_equal(decoded[index], original_pixels)
