"""Encodings and containers: preamble, JPEG frames inside Pixel Data, deflate, big endian."""

from __future__ import annotations

import io

import numpy as np
import pydicom
from PIL import Image
from pydicom.encaps import encapsulate
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
    assert report.action_counts["JPEG frame metadata removed"] >= 2
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
