"""Listing the files of SRC (a folder or a .zip) without trusting anything in it.

Folder: walked without following symbolic links; a link, a device or a FIFO is reported and
skipped. Zip: entry names with '..', absolute paths, drive letters or backslashes, symbolic
links, encrypted entries, entries compressed more than MAX_COMPRESSION_RATIO times, and
entries beyond MAX_TOTAL_UNCOMPRESSED_BYTES are reported and skipped; the sizes are enforced
again while extracting, since a zip's declared sizes may lie.
"""

from __future__ import annotations

import os
import stat
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

MAX_TOTAL_UNCOMPRESSED_BYTES = 50 * 1024**3
MAX_COMPRESSION_RATIO = 200  # DICOM with empty air compresses ~10-50x; bombs reach 1000x+
MAX_ENTRY_BYTES = 4 * 1024**3
COPY_CHUNK_BYTES = 1024 * 1024


class UnsafeInput(Exception):
    """An input entry that must be skipped; the message is the report's reason."""


class UnreadableSource(UnsafeInput, ValueError):
    """SRC as a whole cannot be read (a zip whose central directory is corrupt).

    An UnsafeInput for callers that read archives entry by entry (the site's mask uploads),
    a ValueError for anonymize_tree's callers, like its other refusals of SRC."""


@dataclass(frozen=True)
class InputFile:
    source: str  # relative path inside SRC or the zip entry name (for the report)
    location: str  # absolute path of the file, or of the zip archive
    in_zip: bool = False
    skip_reason: str | None = None  # set when the entry was refused while listing


def list_folder(root: Path) -> list[InputFile]:
    found = []
    for folder, directory_names, file_names in os.walk(root, followlinks=False):
        folder_path = Path(folder)
        for name in sorted(directory_names):
            if (folder_path / name).is_symlink():
                relative = (folder_path / name).relative_to(root).as_posix()
                found.append(InputFile(relative, str(folder_path / name),
                                       skip_reason="symbolic link to a folder: not followed"))
        directory_names[:] = sorted(d for d in directory_names if not (folder_path / d).is_symlink())
        for name in sorted(file_names):
            path = folder_path / name
            relative = path.relative_to(root).as_posix()
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                found.append(InputFile(relative, str(path), skip_reason="symbolic link: not followed"))
            elif not stat.S_ISREG(mode):
                found.append(InputFile(relative, str(path), skip_reason="not a regular file"))
            else:
                found.append(InputFile(relative, str(path)))
    return found


def unsafe_entry_name(name: str) -> str | None:
    if "\\" in name:
        return "entry name contains a backslash (a Windows path could escape the output)"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path in zip entry"
    if ".." in PurePosixPath(name).parts:
        return "'..' in zip entry path (path traversal)"
    if "\0" in name:
        return "NUL byte in zip entry name"
    return None


def list_zip(archive: Path) -> list[InputFile]:
    found = []
    total = 0
    try:
        with zipfile.ZipFile(archive) as opened:
            entries = opened.infolist()
    except (zipfile.BadZipFile, OSError) as error:
        raise UnreadableSource(
            f"SRC is not a readable zip archive ({type(error).__name__}: corrupt or truncated central directory)"
        ) from None
    name_counts = Counter(info.filename for info in entries if not info.is_dir())
    for info in entries:
        name = info.filename
        if info.is_dir():
            continue
        reason = unsafe_entry_name(name)
        if reason is None and name_counts[name] > 1:
            reason = (f"duplicate entry name: {name_counts[name]} entries of the zip share this name, "
                      "so which one is meant is ambiguous; none of them is used")
        unix_mode = info.external_attr >> 16
        if reason is None and stat.S_ISLNK(unix_mode):
            reason = "symbolic link in zip: not followed"
        if reason is None and info.flag_bits & 0x1:
            reason = "encrypted zip entry"
        if reason is None and info.file_size > MAX_ENTRY_BYTES:
            reason = f"zip entry declares {info.file_size} bytes, over the {MAX_ENTRY_BYTES}-byte cap"
        if reason is None and info.compress_size and info.file_size / info.compress_size > MAX_COMPRESSION_RATIO:
            reason = (
                f"zip bomb suspected: compression ratio {info.file_size // info.compress_size}:1 "
                f"exceeds {MAX_COMPRESSION_RATIO}:1"
            )
        if reason is None:
            total += info.file_size
            if total > MAX_TOTAL_UNCOMPRESSED_BYTES:
                reason = f"zip total uncompressed size exceeds the {MAX_TOTAL_UNCOMPRESSED_BYTES}-byte cap"
        display = name if reason is None or "NUL" not in reason else repr(name)
        found.append(InputFile(display, str(archive), in_zip=True, skip_reason=reason))
    return found


# One open ZipFile per archive and process: reading the central directory again for every
# entry would make a zip of n entries cost n squared.
_open_archives: dict[str, zipfile.ZipFile] = {}


def _open_archive(archive: str) -> zipfile.ZipFile:
    opened = _open_archives.get(archive)
    if opened is None:
        opened = _open_archives[archive] = zipfile.ZipFile(archive)
    return opened


def close_archives() -> None:
    """Close the archives this process opened (the site deletes an upload after its run)."""
    while _open_archives:
        _, opened = _open_archives.popitem()
        opened.close()


def extract_entry(archive: str, name: str, destination: Path) -> Path:
    """Copy one zip entry to destination, enforcing the size and ratio caps on real bytes."""
    opened = _open_archive(archive)
    info = opened.getinfo(name)
    limit = min(MAX_ENTRY_BYTES, max(info.compress_size, 1) * MAX_COMPRESSION_RATIO)
    written = 0
    with opened.open(info) as source, destination.open("wb") as target:
        while True:
            chunk = source.read(COPY_CHUNK_BYTES)
            if not chunk:
                break
            written += len(chunk)
            if written > limit:
                raise UnsafeInput(
                    f"zip bomb suspected: entry expands past {limit} bytes "
                    f"(declared {info.file_size}, compressed {info.compress_size})"
                )
            target.write(chunk)
    return destination
