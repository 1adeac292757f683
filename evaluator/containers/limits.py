"""The limits a run gets and the kernel mechanisms that enforce them.

A bwrap run is confined by a cgroup when this host lets us make one (cgroup v2 with the
memory and pids controllers delegated to our cgroup, or writable cgroup v1 memory, pids and
cpu hierarchies, as when the worker runs as root), and otherwise by rlimits set with
util-linux ``prlimit`` (RLIMIT_AS for memory, RLIMIT_NPROC for processes, which binds only a
non-root worker) and ``taskset``/``nice`` for CPU. :func:`cgroup_support` says which.
"""

from __future__ import annotations

import math
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Limits", "RunResult", "Cgroup", "cgroup_support", "STATUSES"]

STATUSES = ("succeeded", "failed", "timeout", "memory", "pids", "output")


@dataclass(frozen=True)
class Limits:
    """What one run may use. ``cpus`` may be fractional (a share of CPU time under cgroups; under
    rlimits it is rounded up to whole CPUs by affinity). ``log_bytes`` caps each of stdout and
    stderr as kept (the end is kept; the rest is counted and dropped). ``output_bytes`` and
    ``output_files`` cap what a run leaves in /output: its files' bytes, and its files and
    folders (see :mod:`.outputs`); no single file the run writes anywhere may pass
    ``output_bytes`` either (RLIMIT_FSIZE)."""

    wall_seconds: float = 3600.0
    memory_bytes: int = 4 * 1024**3
    cpus: float = 1.0
    pids: int = 256
    gpu: bool = False
    log_bytes: int = 64 * 1024
    output_bytes: int = 2 * 1024**3
    output_files: int = 50_000

    def __post_init__(self):
        for name in ("wall_seconds", "memory_bytes", "cpus", "pids", "log_bytes", "output_bytes", "output_files"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0 \
                    or not math.isfinite(value):
                raise ValueError(f"Limits.{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class RunResult:
    """How a run ended. ``status``: succeeded (exit 0), failed (another exit code), timeout
    (killed at ``wall_seconds``), memory (killed by the memory limit), pids (the process limit
    was hit and the run did not succeed), output (it wrote more to /output than ``output_bytes``
    or ``output_files`` allow; what it wrote is deleted). ``reason`` says it in words, ``enforcement`` how the
    limits were enforced. ``stdout``/``stderr`` are at most ``log_bytes`` each (their end) and
    start with a ``[mica: ... dropped]`` line when cut."""

    exit_code: int | None
    status: str
    reason: str
    wall_seconds: float
    peak_memory_bytes: int | None
    stdout: str
    stderr: str
    enforcement: str = ""
    backend: str = ""


def _own_cgroup_paths():
    """{controller or '' (v2): path} from /proc/self/cgroup."""
    paths = {}
    try:
        lines = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return paths
    for line in lines:
        _, controllers, path = line.split(":", 2)
        for c in (controllers.split(",") if controllers else [""]):
            paths[c] = path
    return paths


def _v2_mount():
    for candidate in (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified")):
        if (candidate / "cgroup.controllers").exists():
            return candidate
    return None


def _v1_child(own, controller, name):
    base = Path("/sys/fs/cgroup") / controller
    if controller not in own or not (base / "tasks").exists():
        raise OSError(f"no v1 {controller} hierarchy")
    child = base / own[controller].lstrip("/") / name
    child.mkdir()
    return child


class Cgroup:
    """A fresh cgroup (v2, or one per v1 controller, plus the v1 freezer where there is one)
    that a run's processes join and that is removed afterwards. Made with :meth:`create`; None
    when this host does not let us."""

    V1_CONTROLLERS = ("memory", "pids", "cpu")

    def __init__(self, version, dirs):
        self.version = version
        self.dirs = dirs  # v2: {"": dir}; v1: {controller: dir}

    @classmethod
    def create(cls):
        own = _own_cgroup_paths()
        name = f"mica-run-{uuid.uuid4().hex[:12]}"
        mount = _v2_mount()
        if mount is not None and "" in own:
            parent = mount / own[""].lstrip("/")
            try:
                available = (parent / "cgroup.controllers").read_text().split()
                if {"memory", "pids"} <= set(available):
                    enabled = (parent / "cgroup.subtree_control").read_text().split()
                    wanted = [c for c in ("memory", "pids", "cpu") if c in available and c not in enabled]
                    if wanted:
                        (parent / "cgroup.subtree_control").write_text(" ".join("+" + c for c in wanted))
                    child = parent / name
                    child.mkdir()
                    return cls(2, {"": child})
            except OSError:
                pass
        dirs = {}
        try:
            for controller in cls.V1_CONTROLLERS:
                dirs[controller] = _v1_child(own, controller, name)
        except OSError:
            for d in dirs.values():
                _rmdir(d)
            return None
        try:
            dirs["freezer"] = _v1_child(own, "freezer", name)
        except OSError:
            pass  # kill_all then kills without freezing first
        return cls(1, dirs)

    @property
    def procs_files(self):
        return [d / "cgroup.procs" for d in self.dirs.values()]

    def describe(self):
        if self.version == 2:
            return f"cgroup v2 ({self.dirs[''].parent}): memory.max, memory.swap.max, pids.max, cpu.max"
        return ("cgroup v1: memory.limit_in_bytes (+memsw), pids.max, cpu.cfs_quota_us"
                + (", freezer.state" if "freezer" in self.dirs else ""))

    def apply(self, limits: Limits):
        period = 100_000
        quota = max(1000, int(limits.cpus * period))
        if self.version == 2:
            d = self.dirs[""]
            (d / "memory.max").write_text(str(limits.memory_bytes))
            _try_write(d / "memory.swap.max", "0")
            (d / "pids.max").write_text(str(limits.pids))
            _try_write(d / "cpu.max", f"{quota} {period}")
        else:
            mem = self.dirs["memory"]
            (mem / "memory.limit_in_bytes").write_text(str(limits.memory_bytes))
            _try_write(mem / "memory.memsw.limit_in_bytes", str(limits.memory_bytes))
            (self.dirs["pids"] / "pids.max").write_text(str(limits.pids))
            (self.dirs["cpu"] / "cpu.cfs_period_us").write_text(str(period))
            (self.dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(quota))

    def _events(self, file, key):
        try:
            for line in file.read_text().splitlines():
                k, _, v = line.partition(" ")
                if k == key:
                    return int(v)
        except OSError:
            pass
        return 0

    def oom_killed(self):
        if self.version == 2:
            return self._events(self.dirs[""] / "memory.events", "oom_kill") > 0
        mem = self.dirs["memory"]
        return self._events(mem / "memory.oom_control", "oom_kill") > 0

    def pids_hit(self):
        d = self.dirs[""] if self.version == 2 else self.dirs["pids"]
        return self._events(d / "pids.events", "max") > 0

    def peak_memory(self):
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        d = self.dirs[""] if self.version == 2 else self.dirs["memory"]
        try:
            return int((d / name).read_text())
        except (OSError, ValueError):
            return None

    def pids(self):
        found = set()
        for f in self.procs_files:
            try:
                found.update(int(p) for p in f.read_text().split())
            except OSError:
                pass
        return found

    def kill_all(self):
        """SIGKILL everything in the cgroup. v2's cgroup.kill does it in one step. Otherwise the
        cgroup is frozen first (v2 cgroup.freeze, the v1 freezer), so that nothing can fork
        between reading cgroup.procs and the kills, and thawed for the kills to land; where it
        cannot be frozen, cgroup.procs is read and killed until it stays empty (a race with a
        fork bomb that the loop usually wins)."""
        if not (self.version == 2 and _try_write(self.dirs[""] / "cgroup.kill", "1")):
            frozen = self.freeze()
            _kill(self.pids())
            if frozen:
                self.thaw()
        deadline = time.monotonic() + 5
        while (pids := self.pids()) and time.monotonic() < deadline:
            _kill(pids)
            time.sleep(0.02)

    def freeze(self):
        """Freeze the cgroup; whether it froze within two seconds."""
        if self.version == 2:
            state, write, frozen = self.dirs[""] / "cgroup.events", "1", "frozen 1"
            control = self.dirs[""] / "cgroup.freeze"
        elif "freezer" in self.dirs:
            state = control = self.dirs["freezer"] / "freezer.state"
            write, frozen = "FROZEN", "FROZEN"
        else:
            return False
        if not _try_write(control, write):
            return False
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                if frozen in state.read_text().splitlines():
                    return True
            except OSError:
                return False
            time.sleep(0.005)
        return False

    def thaw(self):
        if self.version == 2:
            _try_write(self.dirs[""] / "cgroup.freeze", "0")
        else:
            _try_write(self.dirs["freezer"] / "freezer.state", "THAWED")

    def remove(self):
        self.kill_all()
        for d in self.dirs.values():
            _rmdir(d)


def _try_write(path, text):
    """Whether ``text`` could be written to ``path``."""
    try:
        Path(path).write_text(text)
    except OSError:
        return False
    return True


def _kill(pids):
    for pid in pids:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass


def _rmdir(path, seconds=5.0):
    """Remove a cgroup. The kernel refuses while its killed processes are still exiting, which
    a fork bomb's hundreds take a while to do on a loaded machine: after ``seconds`` a
    background thread goes on trying for two minutes, so that the run ends without leaving it."""
    if not _try_rmdir(path, seconds):
        threading.Thread(target=_try_rmdir, args=(path, 120.0, 0.5), daemon=True).start()


def _try_rmdir(path, seconds, pause=0.02):
    deadline = time.monotonic() + seconds
    while True:
        try:
            os.rmdir(path)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(pause)


def cgroup_support() -> str | None:
    """How a bwrap run on this host is confined by a cgroup (a sentence), or None when rlimits
    are used instead."""
    cg = Cgroup.create()
    if cg is None:
        return None
    try:
        return cg.describe()
    finally:
        cg.remove()
