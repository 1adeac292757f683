"""`mica`, the command-line client, against a live test server (a real HTTP server thread on the
test database): log in, list, download with resume, validate, submit, wait for the score, read
the leaderboard and the team's submissions; and its exit codes.

Bad inputs tried: a wrong password, a revoked token, no login at all, an unknown phase, a
challenge the user has not registered for, a predictions file with a non-numeric score and an
unknown case (locally and on the site), an archive whose ETag changed between two runs.
"""

import io
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from mica.downloads.models import DataRelease, DownloadRecord
from mica.downloads.tasks import prepare_release
from mica.submissions.models import Submission
from mica_client.api import ExitCode
from mica_client.cli import main
from tests.site.conftest import PASSWORD, csv_bytes, run_evaluations
from tests.site.imaging import ingested_dataset
from tests.site.workers import wait_for

pytestmark = pytest.mark.django_db(transaction=True)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def client_config(tmp_path, monkeypatch):
    path = tmp_path / "config" / "mica.json"
    monkeypatch.setenv("MICA_CONFIG", str(path))
    monkeypatch.delenv("MICA_URL", raising=False)
    monkeypatch.delenv("MICA_TOKEN", raising=False)
    return path


def mica(capsys, *argv):
    """Runs `mica` in this process: (exit code, stdout, stderr)."""
    code = main(["--quiet", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def login(capsys, monkeypatch, live_server, username="paul"):
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, out, err = mica(capsys, "login", "--url", live_server.url, "--username", username)
    assert code == 0, err
    return out


@pytest.fixture
def release(challenge, organizer, tmp_path):
    dataset = ingested_dataset(challenge, organizer, tmp_path)
    case_ids = sorted(dataset.cases.values_list("case_id", flat=True))
    labels = csv_bytes(["case_id", "pneumonia"], [(case_id, index % 2) for index, case_id in enumerate(case_ids)])
    created = DataRelease.create(challenge=challenge, dataset=dataset, name="Training", kind="training",
                                 user=organizer, labels=SimpleUploadedFile("labels.csv", labels))
    prepare_release(created.pk)
    created.refresh_from_db()
    assert created.status == "ready", created.status_reason
    return created


def test_login_stores_the_token_readable_by_the_user_alone(capsys, monkeypatch, live_server, team, client_config):
    out = login(capsys, monkeypatch, live_server)
    assert "Logged in" in out
    assert stat.S_IMODE(client_config.stat().st_mode) == 0o600
    assert live_server.url in client_config.read_text()
    code, out, _ = mica(capsys, "challenges")
    assert code == 0 and "pneumonia" in out and "Pneumonia classification" in out
    code, _, _ = mica(capsys, "logout")
    assert code == 0 and not client_config.exists()


def test_a_wrong_password_and_a_revoked_token_exit_3(capsys, monkeypatch, live_server, team, client_config):
    monkeypatch.setattr("sys.stdin", io.StringIO("wrong password\n"))
    code, _, err = mica(capsys, "login", "--url", live_server.url, "--username", "paul")
    assert code == ExitCode.AUTH and "Unable to log in" in err
    code, _, err = mica(capsys, "challenges")
    assert code == ExitCode.AUTH and "Not logged in" in err
    login(capsys, monkeypatch, live_server)
    token = __import__("json").loads(client_config.read_text())["token"]
    assert mica(capsys, "logout")[0] == 0  # revokes the token on the site
    monkeypatch.setenv("MICA_URL", live_server.url)
    monkeypatch.setenv("MICA_TOKEN", token)
    code, _, err = mica(capsys, "submissions", "pneumonia", "--phase", "Final")
    assert code == ExitCode.AUTH and "log in again" in err


def test_phases_and_their_errors(capsys, monkeypatch, live_server, team, phase):
    login(capsys, monkeypatch, live_server)
    code, out, _ = mica(capsys, "phases", "pneumonia")
    assert code == 0 and "Final" in out and "auc" in out
    code, _, err = mica(capsys, "leaderboard", "pneumonia", "--phase", "Semifinal")
    assert code == ExitCode.DENIED and "has no phase 'Semifinal'" in err
    code, _, err = mica(capsys, "phases", "no-such-challenge")
    assert code == ExitCode.DENIED


def test_validate_submit_wait_leaderboard_and_submissions(capsys, monkeypatch, live_server, team, phase,
                                                           predictions, tmp_path):
    login(capsys, monkeypatch, live_server)
    good = tmp_path / "predictions.csv"
    good.write_bytes(predictions)
    bad = tmp_path / "bad.csv"
    lines = predictions.decode().splitlines()
    bad.write_text("\n".join([lines[0], lines[1].split(",")[0] + ",high", "not-a-case,0.5", *lines[3:]]) + "\n")

    code, out, _ = mica(capsys, "validate", "pneumonia", str(good))
    assert code == 0 and "OK" in out and "40 cases" in out
    code, _, err = mica(capsys, "validate", "pneumonia", str(bad), "--phase", "Final")
    assert code == ExitCode.INVALID
    assert "bad.csv, row 2, column 'score'" in err and "not-a-case" in err

    code, _, err = mica(capsys, "submit", "pneumonia", str(bad))  # the site's own checks say the same
    assert code == ExitCode.INVALID and "row 2" in err

    code, out, err = mica(capsys, "submit", "pneumonia", str(good), "--comment", "first try")
    assert code == 0, err
    submission = Submission.objects.get(team=team, comment="first try")
    assert str(submission.uuid) in out
    assert submission.file.open("rb").read() == predictions  # the multipart body streamed intact
    code, _, err = mica(capsys, "wait", str(submission.uuid), "--timeout", "0.5", "--interval", "0.1")
    assert code == ExitCode.TIMEOUT and "No score after 0.5 s (status: queued)" in err

    run_evaluations(submission)  # the worker's step, in this process (the worker test runs a real one)
    code, out, _ = mica(capsys, "wait", str(submission.uuid), "--interval", "0.1")
    assert code == 0 and "succeeded" in out and "auc:" in out
    code, out, _ = mica(capsys, "leaderboard", "pneumonia")
    assert code == 0 and "Team Paul" in out and "AUC" in out
    code, out, _ = mica(capsys, "submissions", "pneumonia", "--phase", str(phase.pk))
    assert code == 0 and str(submission.uuid) in out and "succeeded" in out and "predictions.csv" in out


def test_an_interrupted_download_resumes_to_the_same_bytes(capsys, monkeypatch, live_server, team, release,
                                                            tmp_path):
    login(capsys, monkeypatch, live_server)
    code, out, _ = mica(capsys, "data", "pneumonia")
    assert code == 0 and "Training" in out and str(release.size) in out
    first = tmp_path / "first"
    code, out, err = mica(capsys, "download", "pneumonia", "--output", str(first))
    assert code == 0, err
    whole = Path(out.strip()).read_bytes()
    assert len(whole) == release.size and zipfile.ZipFile(io.BytesIO(whole)).testzip() is None

    # A download that broke off after a third: the part file and the archive's ETag remain.
    second = tmp_path / "second"
    second.mkdir()
    name = Path(out.strip()).name
    cut = release.size // 3
    (second / f"{name}.part").write_bytes(whole[:cut])
    (second / f"{name}.part.etag").write_text(release.etag)
    code, out, _ = mica(capsys, "download", "pneumonia", "--release", "Training", "--output", str(second))
    assert code == 0
    assert (second / name).read_bytes() == whole and not (second / f"{name}.part").exists()
    # The server records the download once its last chunk is sent, which may be after the client read it.
    wait_for(lambda: DownloadRecord.objects.filter(user__username="paul", range_start=cut, completed=True).exists(),
             timeout=10, what="the resumed download to be recorded as completed")

    # The archive changed since (another ETag): the client starts over and still ends right.
    third = tmp_path / "third"
    third.mkdir()
    (third / f"{name}.part").write_bytes(b"x" * cut)
    (third / f"{name}.part.etag").write_text('"an-older-archive"')
    assert mica(capsys, "download", "pneumonia", "--output", str(third))[0] == 0
    assert (third / name).read_bytes() == whole


def test_an_outsider_cannot_download_and_is_told_why(capsys, monkeypatch, live_server, outsider, release, tmp_path):
    login(capsys, monkeypatch, live_server, username="oscar")
    code, _, err = mica(capsys, "download", "pneumonia", "--output", str(tmp_path))
    assert code == ExitCode.DENIED and "Register for the challenge" in err


def test_the_console_script_runs_as_a_module():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "client")}
    done = subprocess.run([sys.executable, "-m", "mica_client", "--version"], capture_output=True, text=True, env=env)
    assert done.returncode == 0 and "mica-client 0.1.0" in done.stdout
    done = subprocess.run([sys.executable, "-m", "mica_client", "submit"], capture_output=True, text=True, env=env)
    assert done.returncode == ExitCode.USAGE and "required" in done.stderr
