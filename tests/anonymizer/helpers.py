"""Helpers for the anonymizer tests: planted values, PNG/JPEG with metadata, output walks."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


# Names in other character sets, with the encodings the files use.
LATIN1_NAME = "MÜLLER^JOSÉ"  # ISO_IR 100
UTF8_NAME = "ŻÓŁKIEWSKI^ŁUKASZ"  # ISO_IR 192
ASCII_NAME = "NIGHTINGALE^FLORENCE"

PNG_TEXT = "PNG-PHI Nightingale MRN-31415926"
JPEG_COMMENT = b"JPEG-COM Nightingale MRN-31415926"
JPEG_EXIF_ARTIST = "EXIF-Artist Nightingale"


def png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_with_metadata(pixels: np.ndarray, mode: str | None = None) -> bytes:
    """A PNG whose pixels come from Pillow, with tEXt, zTXt, iTXt, tIME and eXIf added."""
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode=mode).save(buffer, format="PNG")
    data = buffer.getvalue()
    end = data.rindex(b"IEND") - 4  # start of the IEND chunk
    extra = (
        png_chunk(b"tEXt", b"Comment\0" + PNG_TEXT.encode("latin-1"))
        + png_chunk(b"zTXt", b"Author\0\0" + zlib.compress(b"zTXt " + PNG_TEXT.encode()))
        + png_chunk(b"iTXt", b"Description\0\0\0\0\0" + ("iTXt " + PNG_TEXT + " Łukasz").encode("utf-8"))
        + png_chunk(b"tIME", struct.pack(">HBBBBB", 2021, 3, 14, 10, 15, 30))
        + png_chunk(b"eXIf", b"MM\0*" + PNG_TEXT.encode())
        + png_chunk(b"prVt", b"private chunk " + PNG_TEXT.encode())
    )
    return data[:end] + extra + data[end:]


def jpeg_with_metadata(pixels: np.ndarray) -> bytes:
    """A JPEG with EXIF (APP1), XMP (APP1), a comment (COM), JFIF and ICC-like APP2 segments."""
    image = Image.fromarray(pixels)
    exif = Image.Exif()
    exif[0x013B] = JPEG_EXIF_ARTIST  # Artist
    exif[0x0132] = "2021:03:14 10:15:30"  # DateTime
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, exif=exif.tobytes(), comment=JPEG_COMMENT)
    data = buffer.getvalue()
    xmp_payload = b"http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>XMP Nightingale</x:xmpmeta>"
    app1_xmp = b"\xff\xe1" + struct.pack(">H", len(xmp_payload) + 2) + xmp_payload
    app2 = b"ICC_PROFILE\0\x01\x01ICC-desc Nightingale"
    app2_segment = b"\xff\xe2" + struct.pack(">H", len(app2) + 2) + app2
    return data[:2] + app1_xmp + app2_segment + data[2:] + b"TRAILING Nightingale"


def encodings_of(value: str) -> set[bytes]:
    """How a planted value can appear in bytes: UTF-8, Latin-1, UTF-16, with ^ or spaces."""
    variants = {value, value.replace("^", " "), value.upper(), value.lower()}
    encoded = set()
    for variant in variants:
        for codec in ("utf-8", "latin-1", "utf-16-le", "utf-16-be"):
            try:
                encoded.add(variant.encode(codec))
            except UnicodeEncodeError:
                pass
    return encoded


def output_files(out: Path) -> list[Path]:
    return sorted(path for path in out.rglob("*") if path.is_file())
