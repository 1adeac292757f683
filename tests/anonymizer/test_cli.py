"""python -m anonymizer, run as a subprocess like an organizer would."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from anonymizer import synthetic

ROOT = Path(__file__).resolve().parents[2]


def cli(*arguments, cwd=None):
    return subprocess.run([sys.executable, "-m", "anonymizer", *map(str, arguments)],
                          capture_output=True, text=True, cwd=cwd or ROOT, timeout=120)


def test_help_says_a_key_is_created_next_to_the_report():
    result = cli("--help")
    assert result.returncode == 0
    assert "a new key is created next to the report" in result.stdout


def test_a_run_without_key_file_creates_one_and_writes_the_report(tmp_path):
    synthetic.write_ct_series(tmp_path / "src", n_slices=2, size=16)
    (tmp_path / "src" / "notes.txt").write_text("hello")
    result = cli(tmp_path / "src", tmp_path / "out", "--report", tmp_path / "run.json",
                 "--uid-map", tmp_path / "uids.json")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run.key").exists()
    assert str(tmp_path / "run.key") in result.stderr
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["summary"] == {"files": 3, "anonymized": 2, "quarantined": 1}
    assert len(json.loads((tmp_path / "uids.json").read_text())) > 0
    # The report names files by their keyed hash only; the private one also by path and ids.
    assert "notes.txt" not in (tmp_path / "run.json").read_text()
    assert not any("private_source" in entry or "original" in entry for entry in report["files"])
    private = json.loads((tmp_path / "run.private.json").read_text())
    by_path = {entry["private_source"]: entry for entry in private["files"]}
    assert by_path["notes.txt"]["original"] is None
    dicom = next(entry for entry in private["files"] if entry["kind"] == "dicom")
    assert dicom["original"]["patient_id"] and dicom["original"]["sop_instance_uid"].startswith("1.")
    again = cli(tmp_path / "src", tmp_path / "out2", "--key-file", tmp_path / "run.key",
                "--report", tmp_path / "run2.json", "--workers", "2")
    assert again.returncode == 0, again.stderr
    second = json.loads((tmp_path / "run2.json").read_text())
    assert [f["output"] for f in second["files"]] == [f["output"] for f in report["files"]]


def test_fatal_errors_exit_non_zero_with_a_clear_message(tmp_path):
    missing = cli(tmp_path / "missing", tmp_path / "out")
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    (tmp_path / "src").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    not_empty = cli(tmp_path / "src", tmp_path / "full")
    assert not_empty.returncode == 2 and "not an empty folder" in not_empty.stderr
    (tmp_path / "bad.key").write_text("not hex")
    bad_key = cli(tmp_path / "src", tmp_path / "out", "--key-file", tmp_path / "bad.key")
    assert bad_key.returncode == 2 and "hexadecimal" in bad_key.stderr
    assert not (tmp_path / "out.report.key").exists()


def test_a_zip_with_a_corrupt_central_directory_gives_a_report_and_exit_2(tmp_path):
    (path,) = synthetic.write_ct_series(tmp_path / "make", n_slices=1, size=16)
    archive = tmp_path / "broken.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.write(path, "a.dcm")
    data = archive.read_bytes()
    archive.write_bytes(data[: data.rindex(b"PK\x01\x02")] + b"\0" * 40)
    result = cli(archive, tmp_path / "out", "--report", tmp_path / "run.json")
    assert result.returncode == 2
    assert "not a readable zip archive" in result.stderr and "Traceback" not in result.stderr
    report = json.loads((tmp_path / "run.json").read_text())
    assert report["error"].startswith("SRC is not a readable zip archive") and report["files"] == []
