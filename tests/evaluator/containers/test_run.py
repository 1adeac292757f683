"""Real sandboxed runs with bwrap (no mock of the runner), under a cgroup where this host lets
us make one and under rlimits, plus the docker/podman command lines.

`podman run` does not work on this machine, so the docker and podman backends are tested by
their exact argument lists only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import evaluator
from evaluator import containers
from evaluator.containers import BACKENDS, BwrapBackend, Limits, cgroup_support, predictions_path, run, write_cases

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "container"
MiB = 1024**2
SMALL = Limits(wall_seconds=20, memory_bytes=256 * MiB, cpus=1, pids=64, log_bytes=64 * 1024)


@pytest.fixture(params=["cgroup", "rlimit"])
def bwrap(request, has_bwrap):
    """The bwrap backend confined by a cgroup, then by rlimits."""
    if request.param == "cgroup" and cgroup_support() is None:
        pytest.skip("no writable cgroup here: the rlimit run covers this host")
    return BwrapBackend(use_cgroups=request.param == "cgroup")


@pytest.fixture
def folders(tmp_path):
    input_dir, output_dir = tmp_path / "input", tmp_path / "output"
    shutil.copytree(EXAMPLE / "sample-input", input_dir)
    output_dir.mkdir()
    return input_dir, output_dir


def _sandbox_processes(marker, settle_seconds=10):
    """Host processes whose command line holds ``marker`` (the sandbox's leftovers), once the
    kernel has had up to ``settle_seconds`` to tear the sandbox's PID namespace down (a fork
    bomb's hundreds of processes take a while to reap on a loaded machine)."""
    deadline = time.monotonic() + settle_seconds
    while True:
        found = []
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    if marker in Path(f"/proc/{entry.name}/cmdline").read_bytes():
                        found.append(int(entry.name))
                except OSError:
                    pass
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.mark.parametrize("behaviour_fmt", ["docker", "oci"])
def test_a_container_that_predicts_is_scored_by_the_evaluator(images, tmp_path, folders, has_bwrap, behaviour_fmt):
    from evaluator.containers import load_image
    image = load_image(images.archive("predict", behaviour_fmt)[0], tmp_path / "img")
    input_dir, output_dir = folders
    result = run(image, input_dir, output_dir, limits=SMALL)
    assert (result.status, result.exit_code, result.stdout) == ("succeeded", 0, "predicted\n"), result
    assert result.peak_memory_bytes and result.peak_memory_bytes < SMALL.memory_bytes
    scores = evaluator.score("classification", EXAMPLE / "sample-truth.csv",
                             predictions_path(output_dir, "classification"))
    assert scores["n_cases"] == 6 and scores["missing_cases"] == 0
    assert scores["metrics"]["auc"] == 1.0


def test_the_network_is_unreachable_even_the_hosts_loopback(loaded, folders, bwrap):
    input_dir, output_dir = folders
    listener = socket.socket()
    listener.bind(("0.0.0.0", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the host's address
    host_ip = probe.getsockname()[0]
    probe.close()
    (input_dir / "targets").write_text(f"127.0.0.1:{port} {host_ip}:{port} 1.1.1.1:80\n")
    result = bwrap.run(loaded("network"), input_dir, output_dir, SMALL)
    assert result.status == "succeeded", result
    outcomes = dict(line.split() for line in (output_dir / "net.txt").read_text().splitlines())
    assert set(outcomes) == {f"127.0.0.1:{port}", f"{host_ip}:{port}", "1.1.1.1:80"}
    assert all(rc != "0" for rc in outcomes.values()), outcomes
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing ever connected
    listener.close()
    links = (output_dir / "links.txt").read_text()
    assert ": lo:" in links and len(links.splitlines()) == 1, links


def test_input_and_the_image_are_read_only_and_tmp_output_are_writable(loaded, folders, bwrap):
    input_dir, output_dir = folders
    before = {p.name: p.read_bytes() for p in input_dir.rglob("*") if p.is_file()}
    image = loaded("write_input")
    result = bwrap.run(image, input_dir, output_dir, SMALL)
    assert result.status == "succeeded", result
    writes = dict(line.split() for line in (output_dir / "writes.txt").read_text().splitlines())
    assert writes == {"/input/evil": "1", "/input/cases.json": "1", "/evil": "1", "/bin/evil": "1",
                      "/tmp/ok": "0", "/output/ok": "0"}
    assert {p.name: p.read_bytes() for p in input_dir.rglob("*") if p.is_file()} == before
    assert not (image.rootfs / "evil").exists() and not (image.rootfs / "bin" / "evil").exists()
    assert not (image.rootfs / "tmp" / "ok").exists()


def test_the_sandbox_sees_only_the_images_environment_no_capabilities_and_its_own_pids(loaded, folders, bwrap):
    input_dir, output_dir = folders
    os.environ["MICA_TEST_SECRET"] = "host-only"
    try:
        result = bwrap.run(loaded("inspect"), input_dir, output_dir, SMALL)
    finally:
        del os.environ["MICA_TEST_SECRET"]
    assert result.status == "succeeded", result
    env = dict(line.split("=", 1) for line in (output_dir / "env.txt").read_text().splitlines())
    assert set(env) <= {"PATH", "HOME", "PWD", "SHLVL"}, env
    assert (output_dir / "caps.txt").read_text().split() == ["CapEff:", "0000000000000000"]
    assert int((output_dir / "nprocs.txt").read_text()) <= 4  # bwrap's init, sh, ls, grep
    assert (output_dir / "hostname.txt").read_text().strip() == "mica"
    escapes = dict(line.split() for line in (output_dir / "escapes.txt").read_text().splitlines())
    assert escapes.keys() == {"userns", "mount", "chroot"} and "0" not in escapes.values(), escapes
    assert set((output_dir / "dev.txt").read_text().split()) <= {
        "console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random", "shm", "stderr", "stdin",
        "stdout", "tty", "urandom", "zero"}


def test_a_run_past_the_time_limit_is_killed_with_all_its_processes(loaded, folders, bwrap):
    input_dir, output_dir = folders
    limits = Limits(wall_seconds=1.5, memory_bytes=SMALL.memory_bytes, pids=SMALL.pids)
    result = bwrap.run(loaded("sleep"), input_dir, output_dir, limits)
    assert result.status == "timeout", result
    assert "1.5 s" in result.reason
    assert 1.5 <= result.wall_seconds < 6
    assert _sandbox_processes(b"sleep\x00120") == []


def test_a_run_past_the_memory_limit_is_killed_or_cannot_allocate(loaded, folders, bwrap):
    input_dir, output_dir = folders
    limits = Limits(wall_seconds=20, memory_bytes=64 * 1024**2, pids=SMALL.pids)
    result = bwrap.run(loaded("memory"), input_dir, output_dir, limits)  # dd with a 400 MB buffer
    if bwrap.use_cgroups:
        assert result.status == "memory", result
        assert "67108864 bytes" in result.reason
        assert result.peak_memory_bytes <= 64 * 1024**2
    else:  # RLIMIT_AS: the allocation fails inside dd, which says so and exits 1
        assert (result.status, result.exit_code) == ("failed", 1), result
        assert "memory" in result.stderr.lower()
        assert "rlimits" in result.reason


def test_a_fork_bomb_is_stopped_by_the_cgroup_pid_limit_without_harming_the_host(loaded, folders, has_bwrap):
    if cgroup_support() is None:
        pytest.skip("no writable cgroup here: see the rlimit test")
    input_dir, output_dir = folders
    limits = Limits(wall_seconds=3, memory_bytes=SMALL.memory_bytes, pids=24)
    result = BwrapBackend(use_cgroups=True).run(loaded("forkbomb"), input_dir, output_dir, limits)
    assert result.status == "pids", result
    assert "more than 24 processes" in result.reason
    if Path("/sys/fs/cgroup/freezer/tasks").exists():  # frozen before the kill: no fork can race it
        assert "freezer.state" in result.enforcement, result.enforcement
    assert _sandbox_processes(b"sleep\x00120") == []
    assert os.waitpid(os.spawnv(os.P_NOWAIT, "/bin/true", ["true"]), 0)[1] == 0  # the host still forks


NOBODY_RUN = """
import importlib.util, json, sys
from pathlib import Path
package = Path(sys.argv[1])
spec = importlib.util.spec_from_file_location("mica_containers", package / "__init__.py",
                                              submodule_search_locations=[str(package)])
containers = importlib.util.module_from_spec(spec)
sys.modules["mica_containers"] = containers
spec.loader.exec_module(containers)
image = containers.load_image(sys.argv[2], sys.argv[3])
result = containers.BwrapBackend(use_cgroups=False).run(
    image, sys.argv[4], sys.argv[5], containers.Limits(wall_seconds=5, pids=24, memory_bytes=256 << 20))
print(json.dumps({"status": result.status, "reason": result.reason, "stderr": result.stderr,
                  "enforcement": result.enforcement}))
"""


def test_a_fork_bomb_is_stopped_by_rlimit_nproc_for_an_unprivileged_worker(images, has_bwrap, tmp_path):
    """RLIMIT_NPROC binds only a non-root user: as root, the runner (its package alone, which
    needs only the standard library) runs as nobody, as a production worker would."""
    archive, _ = images.archive("forkbomb")
    work = Path(tempfile.mkdtemp(prefix="mica-nobody-"))
    try:
        shutil.copy(archive, work / "image.tar")
        for name in ("input", "output"):
            (work / name).mkdir()
        work.chmod(0o777)
        (work / "output").chmod(0o777)
        (work / "image.tar").chmod(0o644)
        argv = [sys.executable if os.geteuid() else "/usr/bin/python3", "-c", NOBODY_RUN,
                str(Path(containers.__file__).parent), str(work / "image.tar"), str(work / "img"),
                str(work / "input"), str(work / "output")]
        if os.geteuid() == 0:
            argv = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        result = json.loads(done.stdout)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    assert result["status"] == "failed", result  # the shell gives up: it cannot fork
    assert "can't fork" in result["stderr"] or "Resource temporarily unavailable" in result["stderr"], result
    assert "RLIMIT_NPROC" in result["enforcement"] and "does not bind root" not in result["enforcement"]
    assert _sandbox_processes(b"sleep\x00120") == []


def test_links_and_special_files_left_in_output_fail_the_run_and_are_removed(loaded, folders, has_bwrap):
    input_dir, output_dir = folders
    result = run(loaded("escape"), input_dir, output_dir, limits=SMALL)
    assert result.status == "failed", result
    assert result.reason.startswith("it left a symlink at /output/predictions.csv; ")
    assert "a special file at /output/masks/pipe" in result.reason
    assert "a hard link at /output/" in result.reason  # the first name found; the other is then alone
    left = sorted(str(p.relative_to(output_dir)) for p in output_dir.rglob("*"))
    assert left in (["a", "masks", "note.txt"], ["linked", "masks", "note.txt"])


def test_logs_keep_their_end_and_say_what_was_dropped(loaded, folders, has_bwrap):
    input_dir, output_dir = folders
    limits = Limits(wall_seconds=20, memory_bytes=SMALL.memory_bytes, pids=SMALL.pids, log_bytes=1000)
    result = run(loaded("chatty"), input_dir, output_dir, limits=limits)
    assert result.status == "succeeded", result
    marker, _, kept = result.stdout.partition("\n")
    assert marker == "[mica: the first 299000 bytes were dropped; the last 1000 are kept]"
    assert kept == ("mica-log-line\n" * 30000)[:300000][-1000:]


def test_one_huge_file_is_stopped_by_the_kernel_one_byte_past_the_output_cap(loaded, folders, bwrap):
    """RLIMIT_FSIZE alone (a backend's run, before run() measures and empties /output): dd of
    100 GB never gets more than the cap and one byte onto the disk."""
    input_dir, output_dir = folders
    limits = dataclasses.replace(SMALL, output_bytes=8 * MiB)
    result = bwrap.run(loaded("hugefile"), input_dir, output_dir, limits)
    assert result.status in ("output", "failed"), result  # the watch, or SIGXFSZ, came first
    assert result.wall_seconds < 10
    assert (output_dir / "predictions.csv").stat().st_size <= 8 * MiB + 1
    assert "RLIMIT_FSIZE" in result.enforcement


def test_a_run_that_writes_one_huge_file_fails_naming_the_cap_and_leaves_nothing(loaded, folders, has_bwrap):
    input_dir, output_dir = folders
    limits = dataclasses.replace(SMALL, output_bytes=8 * MiB)
    result = run(loaded("hugefile"), input_dir, output_dir, limits=limits)
    assert result.status == "output", result
    # Stopped by the watch while it ran, or found after the run: the kernel stopped its write.
    assert result.reason in {"it wrote more than 8 MiB to /output and was stopped",
                             "it wrote more than 8 MiB to /output (a write was stopped at the cap)"}
    assert list(output_dir.iterdir()) == []


def test_a_run_that_writes_a_hundred_thousand_files_is_stopped_early_and_leaves_nothing(loaded, folders, has_bwrap):
    input_dir, output_dir = folders
    limits = dataclasses.replace(SMALL, output_files=1000)
    result = run(loaded("manyfiles"), input_dir, output_dir, limits=limits)
    assert result.status == "output", result
    assert result.reason == "it wrote more than 1000 files and folders to /output and was stopped"  # mid-run
    assert list(output_dir.iterdir()) == []
    assert _sandbox_processes(b"manyfiles") == []


@pytest.mark.parametrize("output_bytes, output_files, reason", [
    (8 * MiB, 5, None),  # exactly at both caps: 4 masks of 2 MiB and their folder
    (8 * MiB - 1, 5, "it wrote more than 8388607 bytes to /output (it exited with code 0)"),
    (8 * MiB, 4, "it wrote more than 4 files and folders to /output (it exited with code 0)"),
])
def test_a_run_at_its_output_caps_succeeds_and_one_byte_or_file_more_fails(loaded, folders, has_bwrap, output_bytes,
                                                                          output_files, reason):
    input_dir, output_dir = folders
    limits = dataclasses.replace(SMALL, output_bytes=output_bytes, output_files=output_files)
    result = run(loaded("fill"), input_dir, output_dir, limits=limits)
    if reason is None:
        assert result.status == "succeeded", result
        assert sorted(p.stat().st_size for p in (output_dir / "masks").iterdir()) == [2 * MiB] * 4
    else:
        assert (result.status, result.reason) in {("output", reason), ("output", reason.rsplit(" (it", 1)[0] + " and was stopped")}
        assert list(output_dir.iterdir()) == []


def test_bad_calls_are_errors_not_runs(loaded, folders, has_bwrap):
    input_dir, output_dir = folders
    with pytest.raises(ValueError, match="unknown backend 'kvm'"):
        run(loaded("predict"), input_dir, output_dir, limits=SMALL, backend="kvm")
    with pytest.raises(ValueError, match="output folder"):
        run(loaded("predict"), input_dir, output_dir / "missing", limits=SMALL)
    with pytest.raises(ValueError, match="GPU"):
        run(loaded("predict"), input_dir, output_dir, limits=Limits(gpu=True))
    with pytest.raises(ValueError, match="Limits.pids"):
        Limits(pids=0)
    with pytest.raises(ValueError, match="Limits.output_files"):
        Limits(output_files=0)


def test_cases_json_lists_each_case_and_refuses_paths_outside(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"x")
    write_cases(tmp_path, {"a": ["images/a.png"]})
    assert json.loads((tmp_path / "cases.json").read_text()) == {"cases": [{"case_id": "a", "files": ["images/a.png"]}]}
    with pytest.raises(ValueError, match="case 'b': the file '../x' is not a relative path"):
        write_cases(tmp_path, {"b": ["../x"]})
    with pytest.raises(ValueError, match="case 'c': the file 'images/c.png' is not in the input folder"):
        write_cases(tmp_path, {"c": ["images/c.png"]})


@pytest.mark.parametrize("engine", ["docker", "podman"])
def test_docker_and_podman_get_the_strict_command_line(loaded, tmp_path, engine):
    image = loaded("predict")
    limits = Limits(wall_seconds=60, memory_bytes=2 * 1024**3, cpus=1.5, pids=128, gpu=True, output_bytes=300 * MiB)
    backend = BACKENDS[engine]
    assert backend.load_argv(image) == [engine, "load", "-i", str(image.archive)]
    argv = backend.run_argv(image, tmp_path / "in", tmp_path / "out", limits, "mica-abc")
    user = ["--userns", "keep-id"] if engine == "podman" else ["--user", f"{os.getuid()}:{os.getgid()}"]
    gpu = ["--device", "nvidia.com/gpu=all"] if engine == "podman" else ["--gpus", "all"]
    assert argv == [engine, "run", "--name", "mica-abc", "--network", "none", "--read-only", "--cap-drop", "ALL",
                    "--security-opt", "no-new-privileges", *user,
                    "--memory", "2147483648", "--memory-swap", "2147483648", "--cpus", "1.5",
                    "--pids-limit", "128", "--ulimit", "core=0", "--ulimit", "fsize=314572801",
                    "--tmpfs", "/tmp:rw,nosuid,nodev,size=2147483648,mode=1777",
                    "-v", f"{tmp_path}/in:/input:ro", "-v", f"{tmp_path}/out:/output:rw", *gpu, image.digest]
