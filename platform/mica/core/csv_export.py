"""Every CSV the site serves is written here, safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is read by Excel,
LibreOffice and Google Sheets as a formula (``=HYPERLINK(...)``, ``@SUM(...)``,
``+cmd|' /C calc'!A0``): such text cells get a leading ``'``, as OWASP's "CSV Injection" page
recommends, which spreadsheets show as plain text. Numbers, and text that is a plain number
("-2.5"), are written as they are: a negative number is a number, not a formula.
"""

import csv
import io
import re

from django.http import HttpResponse

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value):
    """The cell as text a spreadsheet will not evaluate."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_TRIGGERS) and not _is_plain_number(text):
        return "'" + text
    return text


def _is_plain_number(text):
    return re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", text) is not None


def csv_text(header, rows):
    """CSV text (header line first) with every cell made spreadsheet-safe."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([spreadsheet_safe(cell) for cell in header])
    writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)
    return buffer.getvalue()


def csv_response(filename, header, rows):
    """A CSV download: the file name is reduced to letters, digits, ``.``, ``_`` and ``-``."""
    response = HttpResponse(csv_text(header, rows), content_type="text/csv; charset=utf-8")
    safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", filename) or "export.csv"
    response["Content-Disposition"] = f'attachment; filename="{safe_name}"'
    response["X-Content-Type-Options"] = "nosniff"
    return response
