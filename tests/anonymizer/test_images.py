"""PNG and JPEG: metadata stripped byte by byte, pixels and bit depth unchanged."""

from __future__ import annotations

import io

import numpy as np
import pydicom
import pytest
from PIL import Image

import anonymizer
from anonymizer import images
from .helpers import JPEG_COMMENT, PNG_TEXT, jpeg_with_metadata, png_with_metadata


def chunk_types(data: bytes) -> list[bytes]:
    types, position = [], 8
    while position < len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        types.append(data[position + 4 : position + 8])
        position += 12 + length
    return types


@pytest.mark.parametrize("pixels", [
    (np.arange(60 * 50, dtype=np.uint32).reshape(50, 60) * 21 % 65536).astype(np.uint16),
    np.arange(60 * 50, dtype=np.uint8).reshape(50, 60),
    np.random.default_rng(0).integers(0, 255, size=(20, 30, 3), dtype=np.uint8),
], ids=["16-bit grey", "8-bit grey", "rgb"])
def test_png_keeps_pixels_and_loses_every_text_chunk(pixels):
    original = png_with_metadata(pixels)
    stripped, removed = images.strip_png(original)
    assert removed == 6
    assert chunk_types(stripped) == [b"IHDR", b"IDAT", b"IEND"]
    assert b"Nightingale" not in stripped
    with Image.open(io.BytesIO(original)) as before, Image.open(io.BytesIO(stripped)) as after:
        assert after.mode == before.mode
        assert np.array_equal(np.asarray(after), np.asarray(before))


def test_png_with_a_bad_crc_or_no_end_is_rejected():
    data = png_with_metadata(np.zeros((4, 4), dtype=np.uint8))
    corrupt = bytearray(data)
    corrupt[40] ^= 0xFF
    with pytest.raises(images.ImageRejected, match="CRC mismatch|truncated"):
        images.strip_png(bytes(corrupt))
    with pytest.raises(images.ImageRejected, match="truncated PNG"):
        images.strip_png(data[:-12])


def test_jpeg_loses_exif_xmp_comments_and_trailing_bytes_without_reencoding():
    pixels = np.random.default_rng(2).integers(0, 255, size=(24, 32, 3), dtype=np.uint8)
    original = jpeg_with_metadata(pixels)
    assert JPEG_COMMENT in original and b"Exif" in original
    stripped, removed = images.strip_jpeg(original)
    assert removed == 5  # EXIF APP1, XMP APP1, APP2, COM, trailing bytes
    for marker in (b"Exif", b"http://ns.adobe.com", b"ICC_PROFILE", JPEG_COMMENT, b"TRAILING"):
        assert marker not in stripped
    assert stripped[2:6] == b"\xff\xe0\x00\x10"  # the bare 16-byte JFIF header stays
    assert stripped.endswith(b"\xff\xd9")
    with Image.open(io.BytesIO(original)) as before, Image.open(io.BytesIO(stripped)) as after:
        assert np.array_equal(np.asarray(after), np.asarray(before))


def test_progressive_jpeg_with_restart_markers_survives():
    pixels = np.random.default_rng(3).integers(0, 255, size=(64, 64), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", progressive=True, comment=b"COM PHI")
    stripped, _ = images.strip_jpeg(buffer.getvalue())
    assert b"COM PHI" not in stripped
    with Image.open(buffer) as before, Image.open(io.BytesIO(stripped)) as after:
        assert np.array_equal(np.asarray(after), np.asarray(before))


def test_truncated_jpeg_is_rejected():
    data = jpeg_with_metadata(np.zeros((8, 8, 3), dtype=np.uint8))
    end = data.index(b"\xff\xd9")
    with pytest.raises(images.ImageRejected, match="truncated JPEG"):
        images.strip_jpeg(data[: end - 10])


def test_picture_names_are_replaced_by_a_keyed_hash(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "NIGHTINGALE Florence 1956.png").write_bytes(png_with_metadata(np.zeros((5, 5), dtype=np.uint8)))
    report = anonymizer.anonymize_tree(src, tmp_path / "out", key=bytes(32))
    (outcome,) = report.files
    assert outcome.kind == "png" and outcome.status == "anonymized"
    assert "NIGHTINGALE" not in outcome.output and len(outcome.output) == len("images/") + 32 + 4
    assert PNG_TEXT.encode() not in (tmp_path / "out" / outcome.output).read_bytes()
