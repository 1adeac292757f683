"""A zip archive in stored mode whose every byte is known before it is sent.

Each entry's name, size and CRC-32 are computed once (by the task that prepares a release), so
the archive's length is known up front and any byte range of it can be produced without
building what comes before: a download that broke off resumes with an HTTP Range request and
gets the same bytes. Entries are not compressed (images are compressed already) and carry a
fixed date, so the same manifest always gives the same archive. Every entry uses the zip64
fields, so archives and files past 4 GiB need nothing special; `zipfile`, `unzip` and 7-Zip read
them.
"""

import struct
import zlib
from dataclasses import dataclass

# 1980-01-01 00:00:00, the earliest DOS date: no clock leaks into the bytes.
DOS_TIME, DOS_DATE = 0, (0 << 9) | (1 << 5) | 1
UTF8_NAMES = 0x0800
ZIP64_VERSION = 45
FILE_MODE = 0o100644 << 16
CHUNK = 1 << 20


@dataclass(frozen=True)
class Entry:
    name: str  # the path inside the archive
    source: str  # where the bytes are read (a storage name)
    size: int
    crc32: int


def crc32_of(handle):
    """The CRC-32 and size of what a binary file handle holds, read in chunks."""
    crc, size = 0, 0
    while chunk := handle.read(CHUNK):
        crc, size = zlib.crc32(chunk, crc), size + len(chunk)
    return crc, size


def _local_header(entry):
    name = entry.name.encode()
    extra = struct.pack("<HHQQ", 0x0001, 16, entry.size, entry.size)
    return struct.pack(
        "<IHHHHHIIIHH", 0x04034B50, ZIP64_VERSION, UTF8_NAMES, 0, DOS_TIME, DOS_DATE, entry.crc32,
        0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra),
    ) + name + extra


def _central_header(entry, offset):
    name = entry.name.encode()
    extra = struct.pack("<HHQQQ", 0x0001, 24, entry.size, entry.size, offset)
    return struct.pack(
        "<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | ZIP64_VERSION, ZIP64_VERSION, UTF8_NAMES, 0, DOS_TIME,
        DOS_DATE, entry.crc32, 0xFFFFFFFF, 0xFFFFFFFF, len(name), len(extra), 0, 0, 0, FILE_MODE, 0xFFFFFFFF,
    ) + name + extra


def _end_records(n_entries, directory_offset, directory_size):
    zip64_end_offset = directory_offset + directory_size
    zip64_end = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, ZIP64_VERSION, ZIP64_VERSION, 0, 0, n_entries, n_entries,
                            directory_size, directory_offset)
    locator = struct.pack("<IIQI", 0x07064B50, 0, zip64_end_offset, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return zip64_end + locator + end


class StoredZip:
    """The layout of an archive: a list of segments, each either bytes or an entry's content."""

    def __init__(self, entries):
        names = [entry.name for entry in entries]
        if len(set(names)) != len(names):
            raise ValueError("two entries of the archive have the same name")
        self.segments = []  # (offset, length, bytes or Entry)
        offset = 0
        directory = b""
        for entry in entries:
            directory += _central_header(entry, offset)
            for part in (_local_header(entry), entry):
                length = part.size if isinstance(part, Entry) else len(part)
                self.segments.append((offset, length, part))
                offset += length
        tail = directory + _end_records(len(entries), offset, len(directory))
        self.segments.append((offset, len(tail), tail))
        self.size = offset + len(tail)

    def iter_range(self, start, end, open_source):
        """The bytes from `start` to `end` inclusive, in chunks; `open_source(name)` opens an
        entry's source for binary reading (it must support seek)."""
        for offset, length, part in self.segments:
            if offset + length <= start or offset > end:
                continue
            first, last = max(start, offset) - offset, min(end, offset + length - 1) - offset
            if isinstance(part, bytes):
                yield part[first:last + 1]
                continue
            with open_source(part.source) as handle:
                handle.seek(first)
                remaining = last - first + 1
                while remaining:
                    chunk = handle.read(min(CHUNK, remaining))
                    if not chunk:
                        raise OSError(f"{part.name}: its source is shorter than the manifest says")
                    remaining -= len(chunk)
                    yield chunk
