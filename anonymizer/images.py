"""PNG and JPEG: metadata removed byte by byte, pixels untouched.

No re-encoding: a PNG keeps its IDAT chunks and a JPEG its entropy-coded scans exactly, so
pixels and bit depth (16-bit PNG included) cannot change. Only an allow-list of chunks and
segments needed to decode the image survives; everything else (text, time, EXIF, XMP, ICC
profiles, comments, thumbnails, trailing bytes) is dropped.
"""

from __future__ import annotations

import struct
import zlib

from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"

# Chunks needed to show the pixels as encoded (PNG spec 1.2, section 4). Dropped: tEXt, zTXt,
# iTXt (free text), tIME (a date), eXIf (EXIF), iCCP (a profile holds a free-text name),
# sPLT, hIST, and every chunk Mica does not know.
PNG_KEPT_CHUNKS = {b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"sBIT", b"bKGD", b"pHYs"}

# JPEG markers kept (ITU T.81 Table B.1): frame, tables, restart interval, scans, end.
# APP14 "Adobe" is kept only in its fixed 12-byte form and APP0 "JFIF" only in its 14-byte
# form without thumbnail: they say how to convert colour and hold no text. Dropped: every
# other APPn (JFIF thumbnails, EXIF, XMP, ICC, Photoshop IPTC), COM (comments).
JPEG_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
JPEG_TABLE_MARKERS = {0xC4, 0xCC, 0xDB, 0xDD, 0xDC}  # DHT, DAC, DQT, DRI, DNL
JPEG_APP14 = 0xEE
JPEG_APP0 = 0xE0
JPEG_SOS, JPEG_EOI, JPEG_SOI = 0xDA, 0xD9, 0xD8


class ImageRejected(ValueError):
    """The file is not a well-formed PNG/JPEG; the message says why."""


def strip_png(data: bytes) -> tuple[bytes, int]:
    """Return (the PNG with only PNG_KEPT_CHUNKS, number of chunks removed)."""
    if not data.startswith(PNG_SIGNATURE):
        raise ImageRejected("not a PNG file (signature missing)")
    position = len(PNG_SIGNATURE)
    kept = [PNG_SIGNATURE]
    removed = 0
    seen_end = False
    while position < len(data):
        if position + 8 > len(data):
            raise ImageRejected(f"truncated PNG: chunk header cut at byte {position}")
        (length,) = struct.unpack(">I", data[position : position + 4])
        chunk_type = data[position + 4 : position + 8]
        end = position + 12 + length
        if end > len(data):
            raise ImageRejected(f"truncated PNG: a chunk at byte {position} runs past the end of the file")
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(data[position + 4 : end - 4]) != crc:
            raise ImageRejected(f"corrupt PNG: CRC mismatch in the chunk at byte {position}")
        if chunk_type in PNG_KEPT_CHUNKS:
            kept.append(data[position:end])
        else:
            removed += 1
        position = end
        if chunk_type == b"IEND":
            seen_end = True
            break  # bytes after IEND are never part of the image
    if not seen_end:
        raise ImageRejected("truncated PNG: no IEND chunk")
    return b"".join(kept), removed


# JPEG-LS (ITU T.87) adds its frame marker SOF55 and its parameter marker LSE.
JPEG_LS_SOF, JPEG_LS_LSE = 0xF7, 0xF8


def strip_jpeg(data: bytes, *, jpeg_ls: bool = False) -> tuple[bytes, int]:
    """Return (the JPEG with only the markers needed to decode it, number of segments removed).

    `jpeg_ls`: the data is JPEG-LS, whose scans mark bytes differently (T.87 A.1).
    """
    if not data.startswith(JPEG_SIGNATURE):
        raise ImageRejected("not a JPEG file (SOI marker missing)")
    out = [b"\xff\xd8"]
    removed = 0
    position = 2
    size = len(data)
    while position < size:
        if data[position] != 0xFF:
            raise ImageRejected(f"corrupt JPEG: expected a marker at byte {position}")
        marker = data[position + 1] if position + 1 < size else None
        if marker is None:
            raise ImageRejected("truncated JPEG: marker cut at the end of the file")
        if marker == 0xFF:  # fill bytes before a marker
            position += 1
            continue
        if marker == JPEG_EOI:
            out.append(b"\xff\xd9")
            if data[position + 2 :].strip(b"\0"):
                removed += 1  # bytes after EOI (some devices append data; zeros are padding)
            return b"".join(out), removed
        if position + 4 > size:
            raise ImageRejected("truncated JPEG: segment header cut at the end of the file")
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        segment_end = position + 2 + length
        if length < 2 or segment_end > size:
            raise ImageRejected(f"truncated JPEG: segment 0xFF{marker:02X} runs past the end of the file")
        segment = data[position:segment_end]
        if marker == JPEG_SOS:
            scan_end = _end_of_entropy_coded_data(data, segment_end, jpeg_ls=jpeg_ls)
            out.append(data[position:scan_end])
            position = scan_end
            continue
        if marker in JPEG_SOF_MARKERS or marker in JPEG_TABLE_MARKERS:
            out.append(segment)
        elif jpeg_ls and marker in (JPEG_LS_SOF, JPEG_LS_LSE):
            out.append(segment)
        elif marker == JPEG_APP14 and length == 14 and segment[4:9] == b"Adobe":
            out.append(segment)
        elif marker == JPEG_APP0 and length == 16 and segment[4:9] == b"JFIF\0" and segment[16:18] == b"\0\0":
            out.append(segment)  # a bare JFIF header: version and pixel density, no thumbnail
        else:
            removed += 1
        position = segment_end
    raise ImageRejected("truncated JPEG: no EOI marker")


def _end_of_entropy_coded_data(data: bytes, position: int, *, jpeg_ls: bool = False) -> int:
    """Index of the first marker after a scan (skipping stuffed bytes and RSTn markers).

    JPEG stuffs 0x00 after a 0xFF in scan data; JPEG-LS stuffs a 0 bit instead, so there
    a 0xFF followed by a byte below 0x80 is data.
    """
    size = len(data)
    while True:
        position = data.find(b"\xff", position)
        if position < 0 or position + 1 >= size:
            raise ImageRejected("truncated JPEG: scan data runs to the end of the file without EOI")
        following = data[position + 1]
        if jpeg_ls and following < 0x80:
            position += 1
            continue
        if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
            position += 1 if following == 0xFF else 2
            continue
        return position


# JPEG 2000 codestream markers (ITU T.800 Annex A).
J2K_SOC, J2K_SOT, J2K_SOD, J2K_EOC = 0xFF4F, 0xFF90, 0xFF93, 0xFFD9
J2K_COM, J2K_TLM = 0xFF64, 0xFF55


def strip_j2k(data: bytes) -> tuple[bytes, int]:
    """Return (the JPEG 2000 codestream without COM segments, number removed).

    Comments are dropped from the main header and from every tile-part header; each
    tile-part's length (Psot) is reduced by what was dropped from it, and the optional TLM
    table of tile-part lengths is dropped when a tile-part changed. Packet data is untouched.
    """
    removed = 0
    if data[4:12] == JP2_SIGNATURE_BOX_START:
        data, removed = _jp2_codestream(data), 1  # the boxes around it can hold XML, UUIDs...
    if data[:2] != b"\xff\x4f":
        raise ImageRejected("not a JPEG 2000 codestream (SOC marker missing)")
    main_header, position = [b"\xff\x4f"], 2
    tile_parts, tile_part_changed = [], False
    size = len(data)
    while True:
        if position + 4 > size:
            raise ImageRejected("truncated JPEG 2000: main header cut at the end of the data")
        (marker, length) = struct.unpack(">HH", data[position : position + 4])
        if marker == J2K_SOT:
            break
        if marker >> 8 != 0xFF or length < 2 or position + 2 + length > size:
            raise ImageRejected(f"corrupt JPEG 2000: bad marker segment at byte {position}")
        if marker == J2K_COM:
            removed += 1
        else:
            main_header.append(data[position : position + 2 + length])
        position += 2 + length
    while position + 2 <= size and struct.unpack(">H", data[position : position + 2])[0] == J2K_SOT:
        if position + 12 > size:
            raise ImageRejected("truncated JPEG 2000: tile-part header cut at the end of the data")
        (psot,) = struct.unpack(">I", data[position + 6 : position + 10])
        end = size if psot == 0 else position + psot
        if end > size or psot and psot < 14:
            raise ImageRejected(f"corrupt JPEG 2000: tile-part at byte {position} runs past the end of the data")
        cursor, header, dropped = position + 12, [], 0
        while True:
            if cursor + 2 > end:
                raise ImageRejected(f"corrupt JPEG 2000: tile-part at byte {position} has no SOD marker")
            (marker,) = struct.unpack(">H", data[cursor : cursor + 2])
            if marker == J2K_SOD:
                break
            (length,) = struct.unpack(">H", data[cursor + 2 : cursor + 4])
            if marker >> 8 != 0xFF or length < 2 or cursor + 2 + length > end:
                raise ImageRejected(f"corrupt JPEG 2000: bad marker segment at byte {cursor}")
            if marker == J2K_COM:
                dropped += 2 + length
                removed += 1
            else:
                header.append(data[cursor : cursor + 2 + length])
            cursor += 2 + length
        if psot == 0 and end == size and data[end - 2 : end] == b"\xff\xd9":
            end -= 2  # the last tile-part of length 0 runs to EOC, which is written after
        sot = bytearray(data[position : position + 12])
        if psot:
            sot[6:10] = struct.pack(">I", psot - dropped)
        tile_parts.append(bytes(sot) + b"".join(header) + data[cursor:end])
        tile_part_changed = tile_part_changed or dropped > 0
        position = end
    if tile_part_changed:  # TLM lists the old tile-part lengths; it is optional
        main_header = [segment for segment in main_header if segment[:2] != J2K_TLM.to_bytes(2, "big")]
    tail = data[position:]
    if not tail.startswith(b"\xff\xd9"):
        raise ImageRejected("corrupt JPEG 2000: no EOC marker after the last tile-part")
    return b"".join(main_header) + b"".join(tile_parts) + b"\xff\xd9", removed


JP2_SIGNATURE_BOX_START = b"jP  \r\n\x87\n"[:8]


def _jp2_codestream(data: bytes) -> bytes:
    """The contiguous codestream of a JP2 file (its jp2c box); DICOM wants only that."""
    position = 0
    while position + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[position : position + 8])
        header = 8
        if length == 1:
            (length,) = struct.unpack(">Q", data[position + 8 : position + 16])
            header = 16
        end = len(data) if length == 0 else position + length
        if kind == b"jp2c":
            return data[position + header : end]
        if length and length < header or end > len(data):
            break
        position = end
    raise ImageRejected("corrupt JPEG 2000: a JP2 file without a codestream box")


def check_pixel_count(data: bytes, limit: int) -> None:
    """Refuse, from the header alone, an image that would decode to more than `limit` pixels."""
    import io

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            frames = getattr(image, "n_frames", 1)
    except Exception as error:
        raise ImageRejected(f"image header cannot be read ({type(error).__name__})") from None
    if width * height * frames > limit:
        raise ImageRejected(
            f"image of {width}x{height} pixels ({width * height * frames} decoded) is over the limit of "
            f"{limit} decoded pixels per image (max_decoded_pixels)"
        )


def check_decodes(data: bytes, kind: str) -> tuple[int, int, str]:
    """Decode the stripped image fully; returns (width, height, mode) or raises ImageRejected."""
    import io

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            return image.width, image.height, image.mode
    except Exception as error:
        raise ImageRejected(f"{kind.upper()} cannot be decoded ({type(error).__name__})") from None
