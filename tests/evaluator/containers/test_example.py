"""examples/container built with podman as a participant would (on a local Python base made
from this host's python3, since there is no registry here), saved, and run with
`python -m evaluator run-container`, which scores it; plus that command's refusals."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from evaluator import cli

from .conftest import BUSYBOX, _podman_works

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "container"
SKIP_STDLIB = {"test", "idlelib", "tkinter", "lib2to3", "ensurepip", "pydoc_data", "turtledemo", "site-packages",
               "dist-packages", "unittest", "distutils", "asyncio", "email", "xml", "multiprocessing", "sqlite3"}


def _python_base(path):
    """A root filesystem with this host's /usr/bin/python3 (its shared libraries and standard
    library), busybox as /bin/sh, find and chmod, and a setuid /bin/su like Debian's."""
    python = Path("/usr/bin/python3").resolve()
    libs = [Path(line.split("=>")[-1].split("(")[0].strip())
            for line in subprocess.run(["ldd", str(python)], capture_output=True, text=True, check=True
                                       ).stdout.splitlines() if "/" in line]
    stdlib = Path(f"/usr/lib/python{sys.version_info.major}.{sys.version_info.minor}")
    with tarfile.open(path, "w") as tar:
        tar.add(python, arcname=f"usr/bin/{python.name}")
        link = tarfile.TarInfo("usr/bin/python3")
        link.type, link.linkname = tarfile.SYMTYPE, python.name
        tar.addfile(link)
        for lib in libs:
            tar.add(lib.resolve(), arcname=str(lib).lstrip("/"))
        tar.add(stdlib, arcname=str(stdlib).lstrip("/"),
                filter=lambda info: None if set(info.name.split("/")) & SKIP_STDLIB else info)
        tar.add(BUSYBOX, arcname="bin/busybox")
        for applet in ("sh", "find", "chmod"):
            link = tarfile.TarInfo(f"bin/{applet}")
            link.type, link.linkname = tarfile.SYMTYPE, "busybox"
            tar.addfile(link)
        su = tar.gettarinfo(BUSYBOX, arcname="bin/su")
        su.mode = 0o4755
        with open(BUSYBOX, "rb") as fh:
            tar.addfile(su, fh)


@pytest.fixture(scope="session")
def example_archive(tmp_path_factory, has_bwrap):
    if not _podman_works() or not Path("/usr/bin/python3").exists():
        pytest.skip("needs podman and the host's /usr/bin/python3")
    root = tmp_path_factory.mktemp("example")
    _python_base(root / "base.tar")
    subprocess.run(["podman", "import", "-q", "--change", "ENV PATH=/usr/bin:/bin", str(root / "base.tar"),
                    "localhost/mica-test-python"], check=True, capture_output=True)
    subprocess.run(["podman", "build", "-q", "--build-arg", "BASE=localhost/mica-test-python",
                    "-t", "localhost/mica-example", str(EXAMPLE)], check=True, capture_output=True)
    subprocess.run(["podman", "save", "-q", "--format", "docker-archive", "-o", str(root / "example.tar"),
                    "localhost/mica-example"], check=True, capture_output=True)
    return root


def test_the_worked_example_builds_runs_and_is_scored(example_archive, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli.main(["run-container", str(example_archive / "example.tar"), "--input", str(EXAMPLE / "sample-input"),
                     "--output", str(out), "--task", "classification", "--truth", str(EXAMPLE / "sample-truth.csv"),
                     "--wall-seconds", "60", "--memory-bytes", str(512 * 1024**2)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out)
    assert summary["run"]["status"] == "succeeded"
    assert summary["scores"]["metrics"]["auc"] == 1.0
    assert "wrote 6 predictions" in captured.err
    assert (out / "predictions.csv").read_text().splitlines()[0] == "case_id,score"


def test_the_examples_base_alone_is_refused_for_its_setuid_su(example_archive, tmp_path, capsys):
    subprocess.run(["podman", "save", "-q", "--format", "oci-archive", "-o", str(tmp_path / "base.tar"),
                    "localhost/mica-test-python"], check=True, capture_output=True)
    code = cli.main(["run-container", str(tmp_path / "base.tar"), "--input", str(EXAMPLE / "sample-input"),
                     "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "refused:" in err and "/bin/su" in err and "chmod a-s" in err


def test_run_container_checks_without_truth_and_refuses_bad_folders(images, tmp_path, capsys, has_bwrap):
    archive, _ = images.archive("predict")
    out = tmp_path / "out"
    assert cli.main(["run-container", str(archive), "--input", str(EXAMPLE / "sample-input"), "--output", str(out),
                     "--task", "classification"]) == 0
    assert json.loads(capsys.readouterr().out)["valid"] is True
    assert cli.main(["run-container", str(archive), "--input", str(EXAMPLE / "sample-input"),
                     "--output", str(out)]) == 2
    assert "is not empty" in capsys.readouterr().err
    (tmp_path / "no-cases").mkdir()
    assert cli.main(["run-container", str(archive), "--input", str(tmp_path / "no-cases"),
                     "--output", str(tmp_path / "o2")]) == 2
    assert "cases.json is missing" in capsys.readouterr().err
    failing, _ = images.archive("sleep")
    assert cli.main(["run-container", str(failing), "--input", str(EXAMPLE / "sample-input"),
                     "--output", str(tmp_path / "o3"), "--wall-seconds", "1"]) == 1
    assert json.loads(capsys.readouterr().out)["run"]["status"] == "timeout"
    filling, _ = images.archive("fill")  # 8 MiB in four files
    assert cli.main(["run-container", str(filling), "--input", str(EXAMPLE / "sample-input"),
                     "--output", str(tmp_path / "o4"), "--output-bytes", str(4 << 20)]) == 1
    run = json.loads(capsys.readouterr().out)["run"]
    assert run["status"] == "output" and "more than 4 MiB to /output" in run["reason"]
    assert list((tmp_path / "o4").iterdir()) == []
