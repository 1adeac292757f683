"""Mask files, read from a folder or straight from a participant's ``.zip``, trusting nothing.

A set of masks is a folder or a ``.zip`` of ``<case_id>.png`` (2-D) or ``<case_id>.nii.gz``
(3-D) files. A ``.zip`` is read in place, entry by entry, never unpacked to disk:

- entries are flattened to their base name (people zip a folder as often as its files);
  folders, ``__MACOSX/`` and dot-files are ignored; two entries with one base name, a link,
  an encrypted entry or a path with ``..`` or a leading ``/`` are problems;
- the archive is refused from its end record alone when it lists more entries than
  :class:`Limits` allow, and from its central directory when the entries' sizes add up to
  more bytes than allowed, before any entry is read;
- every entry's header (PNG ``IHDR``, NIfTI header) is read before its pixels, and an image
  whose shape differs from the truth's, or that is larger than ``max_voxels``, is refused
  without being decoded;
- an entry whose data fails its CRC-32 check, or whose size differs from its header, is a
  named problem.

Masks keep the integer width they are stored in (``uint8``, ``uint16``...); a float mask with
integer values becomes the narrowest unsigned type holding them.
"""

from __future__ import annotations

import io
import math
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable

import numpy as np

from .problems import ProblemLog

__all__ = ["EXTENSIONS", "Limits", "MaskFile", "MaskHeader", "MaskSet", "open_masks", "read_header",
           "read_mask"]

EXTENSIONS = (".nii.gz", ".png")
#: What macOS adds to an archive: not masks, and no reason to refuse the upload.
MACOS_METADATA_FOLDER = "__MACOSX"
#: Largest mask, in pixels or voxels, read when nothing smaller is known (a 512 × 512 × 1024 CT).
DEFAULT_MAX_VOXELS = 2 ** 28
#: Most mask files a truth may hold.
MAX_TRUTH_CASES = 200_000
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_MODES = {0: "L", 2: "RGB", 3: "P", 4: "LA", 6: "RGBA"}
_CHUNK = 1 << 16
#: Room a NIfTI file may take before its voxels (header and extensions).
_MAX_NIFTI_OFFSET = 1 << 20


@dataclass(frozen=True)
class Limits:
    """What a set of masks may hold; ``None`` is no limit.

    ``max_masks``: mask files (entries that are not ignored); ``max_records``: entries of any
    kind in a ``.zip``'s directory (macOS adds a ``__MACOSX/._`` twin of every file);
    ``max_total_bytes``: the mask files' sizes added up (a ``.zip``'s uncompressed sizes).
    """

    max_masks: int | None = None
    max_records: int | None = None
    max_total_bytes: int | None = None

    @classmethod
    def from_truth(cls, n_cases: int, mask_bytes: int, *, extra_masks=16, factor=4, floor=16 << 20):
        """Caps that follow from a truth of ``n_cases`` masks needing ``mask_bytes`` decoded:
        ``n_cases + extra_masks`` masks, ``2 × that + 16`` records, and ``factor × mask_bytes``
        plus a ``floor`` for small truths."""
        max_masks = n_cases + extra_masks
        return cls(max_masks, 2 * max_masks + 16, factor * mask_bytes + floor)


@dataclass(frozen=True)
class MaskFile:
    """One mask file: its case id, its format (``ext``), where it is (``where``, for messages:
    a display name, never a server path), its size in bytes and how to open it."""

    case_id: str
    ext: str
    where: str
    size: int
    open: Callable[[], io.BufferedIOBase]


@dataclass(frozen=True)
class MaskHeader:
    """What a mask file's header says: ``shape``, stored ``dtype`` (numpy name), ``spacing`` (mm)."""

    shape: tuple
    dtype: str
    spacing: tuple

    @property
    def n_voxels(self) -> int:
        return math.prod(self.shape)


class MaskSet:
    """The mask files of a folder or a ``.zip``, by case id; close it (or use ``with``) after use."""

    def __init__(self, files: dict, archive: zipfile.ZipFile | None = None):
        self.files = files
        self._archive = archive

    def close(self):
        if self._archive is not None:
            self._archive.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _mask_name(base: str, ext: str | None):
    """``(case_id, ext)`` for a mask file's base name, or None when it is not one."""
    found = next((e for e in EXTENSIONS if base.endswith(e)), None)
    if found is None or (ext is not None and found != ext) or len(base) == len(found):
        return None
    return base[: -len(found)], found


def _unexpected(ext):
    return f"unexpected file: masks are named <case_id>{ext or ' or '.join(EXTENSIONS)}"


def open_masks(path, log: ProblemLog, *, name: str | None = None, ext: str | None = None,
               limits: Limits = Limits()) -> MaskSet:
    """The mask files of the folder or ``.zip`` at ``path``; problems go to ``log``.

    ``name`` is shown in messages instead of the path (default: the path's base name); ``ext``
    (``".png"`` or ``".nii.gz"``) makes files of the other format unexpected.
    """
    path = Path(path)
    name = name or path.name
    if path.is_dir():
        return _open_folder(path, log, name, ext, limits)
    if zipfile.is_zipfile(path):
        return _open_zip(path, log, name, ext, limits)
    log.add("is neither a folder nor a .zip archive of masks", file=name)
    return MaskSet({})


def _open_folder(folder, log, name, ext, limits):
    files, total = {}, 0
    for f in sorted(folder.iterdir()):
        if f.name.startswith("."):
            continue
        where = f"{name}/{f.name}"
        found = _mask_name(f.name, ext) if f.is_file() else None
        if found is None:
            log.add(_unexpected(ext), file=where)
            continue
        if found[0] in files:
            log.add(f"is a second mask of case {found[0]!r}, after {files[found[0]].where!r}", file=where)
            continue
        size = f.stat().st_size
        total += size
        files[found[0]] = MaskFile(found[0], found[1], where, size, _opener(f))
    if limits.max_masks is not None and len(files) > limits.max_masks:
        log.add(f"holds {len(files):,} masks, more than the {limits.max_masks:,} allowed", file=name)
        return MaskSet({})
    if limits.max_total_bytes is not None and total > limits.max_total_bytes:
        log.add(f"holds {total:,} bytes of masks, more than the {limits.max_total_bytes:,} allowed", file=name)
        return MaskSet({})
    return MaskSet(files)


def _opener(path):
    return lambda: open(path, "rb")


def _zip_record_count(path) -> int | None:
    """How many entries a .zip's end record announces (zip64 too), read without parsing the
    central directory; None when the end record cannot be found."""
    with open(path, "rb") as fh:
        fh.seek(0, 2)
        size = fh.tell()
        tail_len = min(size, 22 + 65535)
        fh.seek(size - tail_len)
        tail = fh.read(tail_len)
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + 22 > len(tail):
            return None
        count = struct.unpack("<H", tail[at + 10: at + 12])[0]
        locator = at - 20
        if count != 0xFFFF or locator < 0 or tail[locator: locator + 4] != b"PK\x06\x07":
            return count
        (offset,) = struct.unpack("<Q", tail[locator + 8: locator + 16])
        fh.seek(offset)
        record = fh.read(56)
        if len(record) < 40 or record[:4] != b"PK\x06\x06":
            return None
        return struct.unpack("<Q", record[32:40])[0]


def _open_zip(path, log, name, ext, limits):
    announced = _zip_record_count(path)
    if announced is None:
        log.add("is not a readable .zip archive", file=name)
        return MaskSet({})
    if limits.max_records is not None and announced > limits.max_records:
        log.add(f"lists {announced:,} entries, more than the {limits.max_records:,} allowed", file=name)
        return MaskSet({})
    try:
        archive = zipfile.ZipFile(path)
        infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError):
        log.add("is not a readable .zip archive", file=name)
        return MaskSet({})
    if limits.max_records is not None and len(infos) > limits.max_records:
        archive.close()
        log.add(f"lists {len(infos):,} entries, more than the {limits.max_records:,} allowed", file=name)
        return MaskSet({})
    files, taken, taken_by_case, total = {}, {}, {}, 0
    for info in infos:
        entry = info.filename.replace("\\", "/")
        where = f"{name}, entry {entry!r}"
        parts = PurePosixPath(entry).parts
        if info.is_dir() or not parts:
            continue
        if entry.startswith("/") or ".." in parts or ":" in parts[0]:
            log.add("has an unsafe path (absolute, or with '..')", file=where)
            continue
        base = parts[-1]
        if parts[0] == MACOS_METADATA_FOLDER or base.startswith("."):
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            log.add("is a link, not a file", file=where)
            continue
        if info.flag_bits & 0x1:
            log.add("is encrypted", file=where)
            continue
        if base in taken:
            log.add(f"has the same file name as entry {taken[base]!r}", file=where)
            continue
        taken[base] = entry
        found = _mask_name(base, ext)
        if found is None:
            log.add(_unexpected(ext), file=where)
            continue
        if found[0] in files:
            log.add(f"is a second mask of case {found[0]!r}, after entry {taken_by_case[found[0]]!r}", file=where)
            continue
        taken_by_case[found[0]] = entry
        total += info.file_size
        files[found[0]] = MaskFile(found[0], found[1], where, info.file_size, _entry_opener(archive, info))
    if limits.max_masks is not None and len(files) > limits.max_masks:
        log.add(f"holds {len(files):,} masks, more than the {limits.max_masks:,} allowed", file=name)
        files = {}
    elif limits.max_total_bytes is not None and total > limits.max_total_bytes:
        log.add(f"unpacks to {total:,} bytes, more than the {limits.max_total_bytes:,} its masks need", file=name)
        files = {}
    return MaskSet(files, archive)


def _entry_opener(archive, info):
    return lambda: archive.open(info)


# ----------------------------------------------------------------------------- headers
class _Unreadable(ValueError):
    pass


def read_header(mask: MaskFile, *, png_spacing=None) -> MaskHeader:
    """The shape, stored type and spacing of a mask, from its first bytes only.

    Raises ValueError with the reason when the header is not a mask's. ``png_spacing`` is
    the pixel size PNG masks are given (default 1 × 1 mm).
    """
    try:
        with mask.open() as fh:
            if mask.ext == ".png":
                return _png_header(fh, png_spacing)
            return _nifti_header(fh)[0]
    except _Unreadable as exc:
        raise ValueError(f"is not a readable {_FORMAT[mask.ext]} image ({exc})") from None
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError, NotImplementedError, RuntimeError) as exc:
        raise ValueError(_entry_problem(exc)) from None


_FORMAT = {".png": "PNG", ".nii.gz": "NIfTI"}


def _entry_problem(exc):
    if isinstance(exc, zipfile.BadZipFile) and "CRC" in str(exc):
        return "is corrupt: its data fails the archive's CRC-32 check"
    if isinstance(exc, (NotImplementedError, RuntimeError)):
        return "cannot be read: unsupported compression or encryption"
    return f"cannot be read from the archive ({type(exc).__name__})"


def _png_header(fh, spacing):
    head = fh.read(33)
    if head[:8] != _PNG_SIGNATURE or len(head) < 33 or head[12:16] != b"IHDR":
        raise _Unreadable("no PNG signature and IHDR chunk")
    width, height, depth, color = struct.unpack(">IIBB", head[16:26])
    if width == 0 or height == 0:
        raise _Unreadable(f"its header gives a size of {height} × {width}")
    if color not in (0, 3):
        raise ValueError(f"must be a single-channel image, found mode {_PNG_MODES.get(color, color)}")
    dtype = "uint16" if depth == 16 else "uint8"
    return MaskHeader((height, width), dtype, tuple(float(s) for s in (spacing or (1.0, 1.0))))


def _nifti_header(fh):
    """``(MaskHeader, nibabel header)`` from the first bytes of a gzipped NIfTI-1 or -2 file."""
    import nibabel as nib

    raw = _gunzip(fh, 540, exact=False)
    if len(raw) < 348:
        raise _Unreadable("the file is shorter than a NIfTI header")
    sizes = {struct.unpack("<i", raw[:4])[0], struct.unpack(">i", raw[:4])[0]}
    klass, n = (nib.Nifti1Header, 348) if 348 in sizes else (nib.Nifti2Header, 540) if 540 in sizes else (None, 0)
    if klass is None or len(raw) < n:
        raise _Unreadable("no NIfTI-1 or NIfTI-2 header")
    try:
        header = klass.from_fileobj(io.BytesIO(raw[:n]))
        shape = tuple(int(d) for d in header.get_data_shape())
        dtype = header.get_data_dtype()
        zooms = header.get_zooms()
    except Exception as exc:  # nibabel raises many kinds for a corrupt header
        raise _Unreadable(f"{type(exc).__name__}: {exc}") from None
    if len(shape) > 3:
        shape = tuple(d for d in shape if d != 1)
    if len(shape) != 3:
        raise ValueError(f"must be a 3-D volume, found shape {shape}")
    if dtype.kind not in "biuf":
        raise ValueError(f"mask values must be integer labels (found type {dtype})")
    spacing = tuple(float(z) for z in zooms[:3])
    return MaskHeader(shape, "uint8" if dtype.kind == "b" else dtype.name, spacing), header


def _gunzip(fh, limit, *, exact=True):
    """Up to ``limit`` bytes of a gzip stream read from ``fh`` in chunks (never more).

    With ``exact``, fewer bytes than ``limit`` is an error (the file is cut short).
    """
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    while len(out) < limit:
        if d.unconsumed_tail:
            chunk = d.unconsumed_tail
        else:
            chunk = fh.read(_CHUNK)
            if not chunk:
                break
        try:
            out += d.decompress(chunk, limit - len(out))
        except zlib.error:
            raise _Unreadable("its gzip data is corrupt") from None
        if d.eof:
            break
    if exact and len(out) < limit:
        raise _Unreadable("its data is shorter than its header says")
    return bytes(out)


# ----------------------------------------------------------------------------- pixels
def read_mask(mask: MaskFile, header: MaskHeader):
    """The mask's labels as an integer array in its stored width (after :func:`read_header`
    has accepted ``header``); ValueError with the reason when the data is bad.

    Reads the whole file (checking a ``.zip`` entry's CRC-32 and size) before decoding it, and
    refuses first a file larger than any encoding of a mask of that shape needs.
    """
    limit = _max_file_bytes(header)
    if mask.size > limit:
        raise ValueError(f"is {mask.size:,} bytes, more than a mask of shape {tuple(header.shape)} "
                         f"can need ({limit:,})")
    try:
        with mask.open() as fh:
            data = fh.read(mask.size + 1)
    except (zipfile.BadZipFile, EOFError, zlib.error, OSError, NotImplementedError, RuntimeError) as exc:
        raise ValueError(_entry_problem(exc)) from None
    if len(data) != mask.size:
        raise ValueError(f"is corrupt: its size header says {mask.size:,} bytes but it holds {len(data):,}")
    try:
        arr = _decode_png(data) if mask.ext == ".png" else _decode_nifti(data, header)
    except _Unreadable as exc:
        raise ValueError(f"is not a readable {_FORMAT[mask.ext]} image ({exc})") from None
    if arr.shape != tuple(header.shape):
        raise ValueError(f"its pixels have shape {arr.shape}, unlike its header's {tuple(header.shape)}")
    return _labels(arr)


def _max_file_bytes(header: MaskHeader) -> int:
    """The most bytes a PNG or gzipped NIfTI of this shape and type can take: its pixels (with
    PNG's filter byte per row), deflate's worst-case growth (under 1%), header and extensions."""
    raw = header.n_voxels * np.dtype(header.dtype).itemsize + header.shape[0]
    return raw + raw // 100 + _MAX_NIFTI_OFFSET + (1 << 16)


def _decode_png(data):
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            if im.mode not in ("1", "L", "I", "I;16", "P"):
                raise ValueError(f"must be a single-channel image, found mode {im.mode}")
            return np.asarray(im)
    except (OSError, SyntaxError, Image.DecompressionBombError) as exc:
        raise _Unreadable(str(exc)) from None


def _decode_nifti(data, header):
    import nibabel as nib

    with io.BytesIO(data) as fh:
        _, nib_header = _nifti_header(fh)
    offset = int(nib_header["vox_offset"])
    if offset > _MAX_NIFTI_OFFSET:
        raise _Unreadable(f"its voxels start at byte {offset:,}, after more than {_MAX_NIFTI_OFFSET:,} bytes")
    dtype = nib_header.get_data_dtype()
    needed = max(offset, nib_header.sizeof_hdr + 4) + header.n_voxels * dtype.itemsize
    with io.BytesIO(data) as fh:
        raw = _gunzip(fh, needed)
    try:
        img = nib.nifti1.Nifti1Image.from_bytes(raw) if nib_header.sizeof_hdr == 348 \
            else nib.nifti2.Nifti2Image.from_bytes(raw)
        arr = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many kinds for a corrupt file
        raise _Unreadable(f"{type(exc).__name__}: {exc}") from None
    return np.squeeze(arr) if arr.ndim > 3 else arr


def _labels(arr):
    """Integer labels in the narrowest width that holds them; ValueError when not labels."""
    if arr.dtype == bool:
        return arr.view(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        if not np.all(np.isfinite(arr)) or not np.all(arr == np.round(arr)):
            raise ValueError("mask values must be integer labels (found non-integer values)")
        if arr.size and arr.min() < 0:
            raise ValueError(f"mask labels must be non-negative, found {arr.min():g}")
        return arr.astype(np.min_scalar_type(int(arr.max()) if arr.size else 0))
    if arr.size and np.issubdtype(arr.dtype, np.signedinteger) and arr.min() < 0:
        raise ValueError(f"mask labels must be non-negative, found {arr.min()}")
    return arr
