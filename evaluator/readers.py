"""Streaming CSV reading shared by the submission formats.

The reader never loads a whole file: it refuses a file over ``max_bytes`` from its size
alone, reads line by line, stops at the first NUL byte or invalid UTF-8, and stops once a
file has more data rows than ``max_rows``.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from .problems import ProblemLog

__all__ = ["DEFAULT_MAX_BYTES", "iter_csv", "parse_float", "format_header"]

#: Default size limit of a submitted CSV file (option ``max_bytes``).
DEFAULT_MAX_BYTES = 200 * 1024 * 1024


class _BinaryFile(Exception):
    pass


def format_header(fields) -> str:
    return ",".join(fields)


def iter_csv(path, log: ProblemLog, *, max_bytes=DEFAULT_MAX_BYTES, max_rows=None):
    """Yield ``(header, rows)`` where rows yields ``(row_number, fields)``.

    Returns ``None`` (after logging the problem) when the file cannot be read as CSV.
    Row numbers are 1-based line numbers; the header is row 1. Blank lines are skipped.
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
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")

    def lines():
        for line in text:
            if "\x00" in line:
                raise _BinaryFile
            yield line

    reader = csv.reader(lines())

    def first_row():
        for fields in reader:
            if fields and any(f.strip() for f in fields):
                return [f.strip() for f in fields]
        return None

    try:
        header = first_row()
    except _BinaryFile:
        log.add("is a binary file, not CSV text (contains NUL bytes)")
        text.close()
        return None
    except UnicodeDecodeError:
        log.add("is not UTF-8 text (is it a binary file?)")
        text.close()
        return None
    except csv.Error as exc:
        log.add(f"is not valid CSV ({exc})")
        text.close()
        return None
    if header is None:
        log.add("has no header and no rows")
        text.close()
        return None

    def rows():
        n = 0
        try:
            for fields in reader:
                if not fields or not any(f.strip() for f in fields):
                    continue
                n += 1
                if max_rows is not None and n > max_rows:
                    log.add(f"has more rows than the {max_rows} allowed; reading stopped here",
                            row=reader.line_num)
                    return
                yield reader.line_num, [f.strip() for f in fields]
            if n == 0:
                log.add("has a header but no rows")
        except _BinaryFile:
            log.add("is a binary file, not CSV text (contains NUL bytes)", row=reader.line_num + 1)
        except UnicodeDecodeError:
            log.add("is not UTF-8 text (is it a binary file?)", row=reader.line_num + 1)
        except csv.Error as exc:
            log.add(f"is not valid CSV ({exc})", row=reader.line_num)
        finally:
            text.close()

    return header, rows()


def parse_float(text: str, log: ProblemLog, *, row, column, case_id=None, lo=None, hi=None):
    """Parse a finite float; log the problem and return None when it is not one."""
    try:
        value = float(text)
    except ValueError:
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
                       max_bytes=DEFAULT_MAX_BYTES, max_rows=None):
    """Read ``case_id,<k numeric columns>`` with the exact ``expected_header``.

    Returns ``(ids, values, rows)`` (``values`` of shape (n, k), ``rows`` the line numbers) or
    ``None`` when the file could not be read; every problem goes to ``log``. ``allowed_ids``
    (a set) makes an unknown case id a problem.
    """
    import numpy as np

    got = iter_csv(path, log, max_bytes=max_bytes, max_rows=max_rows)
    if got is None:
        return None
    header, rows = got
    if header != list(expected_header):
        log.add(f"wrong header: expected {format_header(expected_header)!r}, found {format_header(header)!r}",
                row=1)
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
