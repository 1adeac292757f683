"""CSV files the site serves, safe to open in a spreadsheet."""

import csv
import io

# A cell that starts with one of these is read as a formula by spreadsheet programs (OWASP's
# "CSV injection"); a leading apostrophe makes it text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value):
    text = str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def csv_text(rows):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows([safe_cell(cell) for cell in row] for row in rows)
    return buffer.getvalue()
