"""The cgroup that confines a bwrap run, on the real kernel files: frozen, thawed and killed.

v1 is this host's own: :meth:`Cgroup.create` makes one per controller plus the freezer. v2 is
the unified hierarchy of a hybrid host (here /sys/fs/cgroup/unified): it holds no memory or
pids controller (they are bound to v1, and a kernel gives a controller to one hierarchy only),
so :meth:`Cgroup.create` cannot pick it and its limit files (memory.max, pids.max, cpu.max) do
not exist; but its core files, cgroup.kill, cgroup.freeze and cgroup.events, are real, and a
v2 :class:`Cgroup` on a fresh child of it exercises them.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest

from evaluator.containers.limits import Cgroup, _own_cgroup_paths, _v2_mount

SLEEPERS = 30


def _v2_cgroup():
    mount, own = _v2_mount(), _own_cgroup_paths()
    if mount is None or "" not in own:
        pytest.skip("no cgroup v2 hierarchy here")
    child = mount / own[""].lstrip("/") / f"mica-test-{uuid.uuid4().hex[:12]}"
    try:
        child.mkdir()
    except OSError as error:
        pytest.skip(f"cannot make a cgroup v2 child here: {error}")
    if not (child / "cgroup.freeze").exists():
        child.rmdir()
        pytest.skip("this kernel's cgroup v2 has no cgroup.freeze (before 5.2)")
    return Cgroup(2, {"": child})


def _v1_cgroup():
    cgroup = Cgroup.create()
    if cgroup is None or cgroup.version != 1:
        if cgroup is not None:
            cgroup.remove()
        pytest.skip("no writable cgroup v1 hierarchies here")
    if "freezer" not in cgroup.dirs:
        cgroup.remove()
        pytest.skip("no cgroup v1 freezer here")
    return cgroup


@pytest.fixture(params=["v1", "v2"])
def cgroup(request):
    made = _v1_cgroup() if request.param == "v1" else _v2_cgroup()
    yield made
    made.remove()
    assert not any(d.exists() for d in made.dirs.values())


def _start_inside(cgroup, marker):
    """A shell that joins the cgroup, starts SLEEPERS `sleep <marker>` and then spins; once all
    are inside and sleeping."""
    script = ('for f in "$@"; do echo $$ > "$f" || exit 125; done; '
              f'i=0; while [ $i -lt {SLEEPERS} ]; do sleep {marker} & i=$((i+1)); done; while :; do :; done')
    shell = subprocess.Popen(["/bin/sh", "-c", script, "sh", *map(str, cgroup.procs_files)])
    deadline = time.monotonic() + 10
    while len(cgroup.pids()) < SLEEPERS + 1 or len(_running(marker)) < SLEEPERS:  # forked, then exec'd
        assert shell.poll() is None and time.monotonic() < deadline, "the processes did not join the cgroup"
        time.sleep(0.05)
    return shell


def _cpu_ticks(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime


def _running(marker):
    return [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline(p) == f"sleep\0{marker}\0".encode()]


def _cmdline(proc):
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def test_a_frozen_cgroup_runs_nothing_until_thawed(cgroup):
    shell = _start_inside(cgroup, "611")
    try:
        assert cgroup.freeze()
        if cgroup.version == 2:
            assert "frozen 1" in (cgroup.dirs[""] / "cgroup.events").read_text().splitlines()
        else:
            assert (cgroup.dirs["freezer"] / "freezer.state").read_text().strip() == "FROZEN"
        before = _cpu_ticks(shell.pid)
        time.sleep(0.5)
        assert _cpu_ticks(shell.pid) == before  # the spinning shell does not run
        cgroup.thaw()
        deadline = time.monotonic() + 5
        while _cpu_ticks(shell.pid) == before:
            assert time.monotonic() < deadline, "the shell did not run again once thawed"
            time.sleep(0.05)
    finally:
        cgroup.kill_all()
        shell.wait(timeout=10)


def test_kill_all_leaves_no_process_of_the_cgroup(cgroup):
    shell = _start_inside(cgroup, "612")
    assert len(_running("612")) == SLEEPERS
    cgroup.kill_all()
    assert cgroup.pids() == set()
    assert shell.wait(timeout=10) == -9
    deadline = time.monotonic() + 5
    while _running("612"):  # killed; their parent's reaping may take a moment
        assert time.monotonic() < deadline, "sleepers outlived the kill"
        time.sleep(0.05)
