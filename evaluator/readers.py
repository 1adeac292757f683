"""Streaming CSV reading shared by the submission formats.

The reader never loads a whole file: it refuses a file over ``max_bytes`` from its size
alone, reads line by line with a length limit, stops at the first NUL byte, invalid UTF-8 or
unterminated quote, and stops a few rows after a file has more data rows than ``max_rows``.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

from .problems import ProblemLog

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_LINE_BYTES", "iter_csv", "parse_float", "format_header"]

#: Default size limit of a submitted CSV file (option ``max_bytes``).
DEFAULT_MAX_BYTES = 200 * 1024 * 1024


#: Default length limit of one CSV line (option ``max_line_bytes``).
DEFAULT_MAX_LINE_BYTES = 1024 * 1024

#: How many rows past the truth's case count are read (and named) before reading stops.
EXTRA_ROWS = 16


class _BinaryFile(Exception):
    pass


class _LongLine(Exception):
    pass


def format_header(fields) -> str:
    return ",".join(fields)


def iter_csv(path, log: ProblemLog, *, max_bytes=DEFAULT_MAX_BYTES, max_rows=None,
             max_line_bytes=DEFAULT_MAX_LINE_BYTES):
    """Yield ``(header, rows)`` where rows yields ``(row_number, fields)``.

    Returns ``None`` (after logging the problem) when the file cannot be read as CSV.
    Row numbers are 1-based line numbers; the header is row 1. Blank lines are skipped.
    Lines are read with a length limit (``max_line_bytes``), so that a one-line file of many
    megabytes costs no more memory than the limit. Reading stops ``EXTRA_ROWS`` rows past
    ``max_rows``, so that the rows beyond the truth's case count are still named (as
    duplicates or unknown cases) before the file is called too long.
    """
    path = Path(path)
    try:
        size = os.stat(path).st_size
    except OSError as exc:
        log.add(f"cannot be read ({exc.strerror or exc})")
        return None
    if not path.is_file():
        log.add("is not a file")
        return None
    if size == 0:
        log.add("is empty (0 bytes)")
        return None
    if max_bytes is not None and size > max_bytes:
        log.add(f"is {size:,} bytes, over the limit of {int(max_bytes):,} bytes")
        return None
    raw = open(path, "rb")
    line_limit = int(max_line_bytes) if max_line_bytes is not None else -1

    def lines():
        first = True
        while True:
            line = raw.readline(line_limit + 1 if line_limit >= 0 else -1)
            if not line:
                return
            if line_limit >= 0 and len(line) > line_limit:
                raise _LongLine
            if b"\x00" in line:
                raise _BinaryFile
            yield line.decode("utf-8-sig" if first else "utf-8")
            first = False

    reader = csv.reader(lines(), strict=True)
    last_row = [0]  # the line number of the last row read: a bad quote starts after it

    def read_one():
        fields = next(reader)
        start, last_row[0] = last_row[0] + 1, reader.line_num
        return start, fields

    def problem(exc):
        """The message for what stopped the reading, or None for a clean end."""
        if isinstance(exc, _BinaryFile):
            return "is a binary file, not CSV text (contains NUL bytes)"
        if isinstance(exc, UnicodeDecodeError):
            return "is not UTF-8 text (is it a binary file?)"
        if isinstance(exc, _LongLine):
            return f"has a line longer than the limit of {line_limit:,} bytes"
        if "unexpected end of data" in str(exc):
            return f"has an unterminated quote (\") starting in row {last_row[0] + 1}"
        if "field larger than field limit" in str(exc):
            return (f"has a field longer than {csv.field_size_limit():,} characters "
                    f"(an unterminated quote (\") after row {last_row[0]}?)")
        return f"is not valid CSV ({exc})"

    def first_row():
        while True:
            try:
                _, fields = read_one()
            except StopIteration:
                return None
            if fields and any(f.strip() for f in fields):
                return [f.strip() for f in fields]

    try:
        header = first_row()
    except (_BinaryFile, _LongLine, UnicodeDecodeError, csv.Error) as exc:
        log.add(problem(exc), row=1 if isinstance(exc, _LongLine) else None)
        raw.close()
        return None
    if header is None:
        log.add("has no header and no rows")
        raw.close()
        return None

    def rows():
        n = 0
        try:
            while True:
                try:
                    start, fields = read_one()
                except StopIteration:
                    break
                if not fields or not any(f.strip() for f in fields):
                    continue
                n += 1
                if max_rows is not None and n > max_rows + EXTRA_ROWS:
                    log.add(f"has more rows than the {max_rows} allowed; reading stopped here", row=start)
                    return
                yield start, [f.strip() for f in fields]
            if n == 0:
                log.add("has a header but no rows")
        except (_BinaryFile, _LongLine, UnicodeDecodeError, csv.Error) as exc:
            log.add(problem(exc), row=last_row[0] + 1)
        finally:
            raw.close()

    return header, rows()


def parse_float(text: str, log: ProblemLog, *, row, column, case_id=None, lo=None, hi=None):
    """Parse a finite float; log the problem and return None when it is not one."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or "_" in text or not text.isascii():  # float() takes "1_000" and "١٢" too
        log.add(f"{text!r} is not a number", row=row, column=column, case_id=case_id)
        return None
    if not math.isfinite(value):
        log.add(f"{text!r} is not a finite number", row=row, column=column, case_id=case_id)
        return None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        log.add(f"{text} is outside [{lo:g}, {hi:g}]", row=row, column=column, case_id=case_id)
        return None
    return value


def read_numeric_table(path, log: ProblemLog, *, expected_header, allowed_ids=None, lo=None, hi=None,
                       max_bytes=DEFAULT_MAX_BYTES, max_rows=None, max_line_bytes=DEFAULT_MAX_LINE_BYTES):
    """Read ``case_id,<k numeric columns>`` with the ``expected_header`` (or one of several).

    Returns ``(ids, values, rows)`` (``values`` of shape (n, k), ``rows`` the line numbers) or
    ``None`` when the file could not be read; every problem goes to ``log``. ``allowed_ids``
    (a set) makes an unknown case id a problem.
    """
    import numpy as np

    got = iter_csv(path, log, max_bytes=max_bytes, max_rows=max_rows, max_line_bytes=max_line_bytes)
    if got is None:
        return None
    header, rows = got
    accepted = [list(h) for h in expected_header] if isinstance(expected_header[0], (list, tuple)) \
        else [list(expected_header)]
    if header not in accepted:
        wanted = " or ".join(repr(format_header(h)) for h in accepted)
        log.add(f"wrong header: expected {wanted}, found {format_header(header)!r}", row=1)
        rows.close()
        return None
    k = len(header)
    ids, values, lines, seen = [], [], [], {}
    for row, fields in rows:
        if len(fields) != k:
            log.add(f"has {len(fields)} columns, expected {k} ({format_header(header)})", row=row,
                    case_id=fields[0] or None)
            continue
        case_id = fields[0]
        if not case_id:
            log.add("case id is empty", row=row, column=header[0])
            continue
        if case_id in seen:
            log.add(f"duplicate case id {case_id!r}: rows {seen[case_id]} and {row}", row=row,
                    column=header[0], case_id=case_id)
            continue
        seen[case_id] = row
        if allowed_ids is not None and case_id not in allowed_ids:
            log.add(f"unknown case id {case_id!r}", row=row, column=header[0], case_id=case_id)
            continue
        vals = [parse_float(f, log, row=row, column=c, case_id=case_id, lo=lo, hi=hi)
                for f, c in zip(fields[1:], header[1:])]
        if any(v is None for v in vals):
            continue
        ids.append(case_id)
        values.append(vals)
        lines.append(row)
    arr = np.asarray(values, dtype=np.float64).reshape(len(values), k - 1)
    return ids, arr, lines
