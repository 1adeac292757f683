"""Backends that run an unpacked image on a case folder, and :func:`run`, which picks one by name.

``bwrap`` (bubblewrap) runs the unpacked root filesystem in fresh user, pid, network, ipc,
uts and cgroup namespaces, with limits from a cgroup or rlimits (see :mod:`.limits`).
``docker`` and ``podman`` hand the original archive to a container engine on a production
host with the same confinement expressed as engine options (:meth:`EngineBackend.run_argv`).
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import math
import os
import shutil
import signal
import stat
import subprocess
import threading
import time
import uuid
from pathlib import Path

from .image import Image
from .limits import Cgroup, Limits, RunResult
from .outputs import OutputWatch, breach_reason, empty, file_size_rlimit, over_cap

__all__ = ["BACKENDS", "BwrapBackend", "EngineBackend", "run", "DEFAULT_PATH"]

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class _TailBuffer:
    """Keeps the last ``limit`` bytes of a stream and counts what it dropped."""

    def __init__(self, limit):
        self.limit, self.chunks, self.size, self.dropped = limit, collections.deque(), 0, 0

    def feed(self, data):
        self.chunks.append(data)
        self.size += len(data)
        while self.size > self.limit:
            extra = self.size - self.limit
            head = self.chunks[0]
            if len(head) <= extra:
                self.chunks.popleft()
                self.size -= len(head)
                self.dropped += len(head)
            else:
                self.chunks[0] = head[extra:]
                self.size -= extra
                self.dropped += extra

    def text(self):
        body = b"".join(self.chunks).decode("utf-8", errors="replace")
        if self.dropped:
            return f"[mica: the first {self.dropped} bytes were dropped; the last {self.limit} are kept]\n" + body
        return body


def _pump(stream, buffer):
    with stream:
        while data := stream.read(65536):
            buffer.feed(data)


class _MemorySampler:
    """The peak memory of a process tree, from /proc: the larger of one process's high-water
    mark (VmHWM, exact) and the tree's summed resident size (VmRSS, sampled ten times a
    second). Used where no cgroup counts it: getrusage cannot, because a child forked from
    this (large) Python process inherits its high-water mark."""

    def __init__(self, root_pid):
        self.root, self.peak, self.stop = root_pid, 0, threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _tree(self):
        children = collections.defaultdict(list)
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat", "rb") as fh:
                        ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
                except (OSError, ValueError, IndexError):
                    continue
                children[ppid].append(int(entry.name))
        tree, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            todo.extend(children.get(pid, ()))
        return tree

    def _sample(self):
        total = 0
        for pid in self._tree():
            try:
                with open(f"/proc/{pid}/status") as fh:
                    fields = dict(line.split(":", 1) for line in fh if ":" in line)
            except OSError:
                continue
            rss = int(fields.get("VmRSS", "0 kB").split()[0]) * 1024
            hwm = int(fields.get("VmHWM", "0 kB").split()[0]) * 1024
            total += rss
            self.peak = max(self.peak, hwm)
        self.peak = max(self.peak, total)

    def _loop(self):
        while True:
            self._sample()
            if self.stop.wait(0.1):
                return

    def finish(self):
        self.stop.set()
        self.thread.join()
        return self.peak or None


def _execute(argv, limits: Limits, output_dir, *, stop, env=None, sample_memory=False):
    """Run ``argv`` in its own session, keep its logs' tails, ``stop(proc)`` it at the wall limit
    or once ``output_dir`` passes an output cap. Returns (exit code or None, timed out, wall
    seconds, sampled peak memory or None, out, err, the output cap passed or None)."""
    out, err = _TailBuffer(limits.log_bytes), _TailBuffer(limits.log_bytes)
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env=env if env is not None else {"PATH": DEFAULT_PATH})
    pumps = [threading.Thread(target=_pump, args=(proc.stdout, out), daemon=True),
             threading.Thread(target=_pump, args=(proc.stderr, err), daemon=True)]
    for t in pumps:
        t.start()
    sampler = _MemorySampler(proc.pid) if sample_memory else None
    watch = OutputWatch(output_dir, limits, lambda: stop(proc))
    fired = threading.Event()

    def expire():
        fired.set()
        stop(proc)

    timer = threading.Timer(limits.wall_seconds, expire)
    timer.daemon = True
    timer.start()
    proc.wait()
    wall = time.monotonic() - start
    timer.cancel()
    timed_out = fired.is_set()
    passed = watch.finish()
    peak = sampler.finish() if sampler is not None else None
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # anything the session left behind
    except (ProcessLookupError, PermissionError):
        pass
    for t in pumps:
        t.join(timeout=5)
    return proc.returncode, timed_out, wall, peak, out.text(), err.text(), passed


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _ended(exit_code):
    if exit_code is None:
        return "did not start"
    if exit_code < 0:
        return f"was killed by signal {-exit_code} ({signal.Signals(-exit_code).name})" \
            if -exit_code in signal.Signals._value2member_map_ else f"was killed by signal {-exit_code}"
    return f"exited with code {exit_code}"


def _classify(exit_code, timed_out, oom, pids_hit, output_passed, limits: Limits, enforcement_note=""):
    if output_passed:
        return "output", f"{breach_reason(output_passed, limits)} and was stopped"
    if oom:
        return "memory", f"killed: it used more than the memory limit of {limits.memory_bytes} bytes"
    if pids_hit and (timed_out or exit_code != 0):
        extra = f" and was stopped at the time limit of {limits.wall_seconds:g} s" if timed_out else ""
        return "pids", f"it tried to run more than {limits.pids} processes{extra}"
    if timed_out:
        return "timeout", f"killed: it ran past the time limit of {limits.wall_seconds:g} s"
    if exit_code == 0:
        return "succeeded", "exited with code 0"
    return "failed", _ended(exit_code) + enforcement_note


# ---------------------------------------------------------------- bwrap

def _resolve_in_root(rootfs: Path, rel: str):
    """``rootfs/rel`` reached without following a symlink, or None."""
    cur = rootfs
    for part in [p for p in rel.split("/") if p]:
        cur = cur / part
        try:
            if stat.S_ISLNK(os.lstat(cur).st_mode):
                return None
        except OSError:
            return None
    return cur


def _lookup(image: Image, table, name):
    """The fields of ``name``'s line in the image's /etc/passwd or /etc/group."""
    path = _resolve_in_root(image.rootfs, f"etc/{table}")
    if path is not None and path.is_file():
        for line in path.read_text(errors="replace").splitlines():
            fields = line.split(":")
            if fields[0] == name and len(fields) > 3 and fields[2].isdigit() and fields[3].isdigit():
                return fields
    raise ValueError(f"the image's USER {image.config.user!r}: {name!r} is not in its /etc/{table}")


def _image_user(image: Image):
    """(uid, gid) inside the sandbox for the image's USER ("" is root; a name is looked up in
    the image's /etc/passwd and /etc/group). Raises ValueError naming the user when unknown."""
    user, _, group = image.config.user.partition(":")
    uid = gid = 0
    if user.isdigit():
        uid = int(user)
    elif user:
        fields = _lookup(image, "passwd", user)
        uid, gid = int(fields[2]), int(fields[3])
    if group:
        gid = int(group) if group.isdigit() else int(_lookup(image, "group", group)[2])
    return uid, gid


@functools.lru_cache(maxsize=None)
def _check_bwrap():
    if shutil.which("bwrap") is None:
        raise RuntimeError("bwrap (bubblewrap) is not installed")
    usage = subprocess.run(["bwrap", "--help"], capture_output=True, text=True).stdout
    if "--disable-userns" not in usage:
        raise RuntimeError("bubblewrap 0.8 or later is needed (for --disable-userns)")


class BwrapBackend:
    """Runs the unpacked root filesystem with bubblewrap. ``use_cgroups`` (default: when the host
    lets us) confines the run by a cgroup; without, by rlimits."""

    name = "bwrap"

    def __init__(self, use_cgroups: bool = True):
        self.use_cgroups = use_cgroups

    def sandbox_argv(self, image: Image, input_dir, output_dir, limits: Limits) -> list[str]:
        """bwrap's command line: everything unshared, the image read-only at /, the cases
        read-only at /input, /output writable, a private /tmp, /proc and a minimal /dev."""
        uid, gid = _image_user(image)
        argv = ["bwrap", "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
                "--new-session", "--cap-drop", "ALL", "--uid", str(uid), "--gid", str(gid),
                "--hostname", "mica",
                "--ro-bind", str(image.rootfs), "/",
                "--ro-bind", str(Path(input_dir).resolve()), "/input",
                "--bind", str(Path(output_dir).resolve()), "/output",
                "--size", str(limits.memory_bytes), "--perms", "1777", "--tmpfs", "/tmp",
                "--proc", "/proc", "--dev", "/dev",
                "--clearenv"]
        env = dict(e.split("=", 1) if "=" in e else (e, "") for e in image.config.env)
        env.setdefault("PATH", DEFAULT_PATH)
        env.setdefault("HOME", "/tmp")
        for key, value in env.items():
            argv += ["--setenv", key, value]
        argv += ["--chdir", image.config.workdir or "/", "--", *image.config.argv]
        return argv

    def run(self, image: Image, input_dir, output_dir, limits: Limits) -> RunResult:
        if limits.gpu:
            raise ValueError("the bwrap backend runs without a GPU; use the docker or podman backend "
                             "on a GPU host")
        _check_bwrap()
        if not image.config.argv:
            return RunResult(None, "failed", "the image has no ENTRYPOINT or CMD", 0.0, None, "", "",
                             backend=self.name)
        try:
            argv = self.sandbox_argv(image, input_dir, output_dir, limits)
        except ValueError as exc:
            return RunResult(None, "failed", str(exc), 0.0, None, "", "", backend=self.name)
        cgroup = Cgroup.create() if self.use_cgroups else None
        try:
            if cgroup is not None:
                cgroup.apply(limits)
                enforcement = cgroup.describe()
                # A shell joins the cgroup, then becomes prlimit, then bwrap: every sandboxed process is inside.
                files = [str(f) for f in cgroup.procs_files]
                script = ('n=%d; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; '
                          'exec "$@"') % len(files)
                wrapped = ["/bin/sh", "-c", script, "sh", *files, *_file_size_wrapper(limits), *argv]
            else:
                wrapped, enforcement = _rlimit_wrapper(limits), _rlimit_description()
                wrapped = wrapped + argv
            enforcement += f"; /output: {OUTPUT_ENFORCEMENT}"

            def stop(proc):
                if cgroup is not None:
                    cgroup.kill_all()
                _kill_group(proc)

            code, timed_out, wall, sampled, out, err, passed = _execute(wrapped, limits, output_dir, stop=stop,
                                                                        sample_memory=cgroup is None)
            if cgroup is not None:
                oom, pids_hit, peak = cgroup.oom_killed(), cgroup.pids_hit(), cgroup.peak_memory()
                note = ""
            else:
                oom, pids_hit, peak = False, False, sampled
                note = (f"; under rlimits an allocation past {limits.memory_bytes} bytes or a fork past "
                        f"{limits.pids} processes fails inside the program instead of being reported")
            status, reason = _classify(code, timed_out, oom, pids_hit, passed, limits, note)
            return RunResult(code, status, reason, wall, peak, out, err, enforcement, self.name)
        finally:
            if cgroup is not None:
                cgroup.remove()


OUTPUT_ENFORCEMENT = "RLIMIT_FSIZE (each file) and a watch of its size and file count"


def _file_size_wrapper(limits: Limits):
    return ["prlimit", f"--fsize={file_size_rlimit(limits)}", "--core=0", "--"]


def _rlimit_wrapper(limits: Limits):
    cpus = max(1, math.ceil(limits.cpus))
    wrapper = ["prlimit", f"--as={limits.memory_bytes}", f"--nproc={limits.pids}",
               f"--fsize={file_size_rlimit(limits)}", "--core=0", "--"]
    available = sorted(os.sched_getaffinity(0))
    return wrapper + ["taskset", "-c", ",".join(str(c) for c in available[:cpus]), "nice", "-n", "10"]


def _rlimit_description():
    text = "rlimits: RLIMIT_AS (memory), RLIMIT_NPROC (processes), taskset + nice (CPU)"
    if os.geteuid() == 0:
        text += "; RLIMIT_NPROC does not bind root, so run the worker as an unprivileged user"
    return text


# ---------------------------------------------------------------- docker / podman

class EngineBackend:
    """Runs the original archive with a container engine (``docker`` or ``podman``) on a
    production host. :meth:`load_argv` and :meth:`run_argv` are the exact command lines."""

    def __init__(self, engine: str):
        self.name = engine

    def load_argv(self, image: Image) -> list[str]:
        return [self.name, "load", "-i", str(image.archive)]

    def run_argv(self, image: Image, input_dir, output_dir, limits: Limits, container_name: str) -> list[str]:
        argv = [self.name, "run", "--name", container_name, "--network", "none", "--read-only",
                "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
        if self.name == "podman":
            argv += ["--userns", "keep-id"]  # a fresh user namespace; the host user owns /output
        else:
            # Docker's user namespace is the daemon's (userns-remap or rootless docker); the run
            # itself never gets root: it runs as the worker's user, who owns /output.
            argv += ["--user", f"{os.getuid()}:{os.getgid()}"]
        argv += ["--memory", str(limits.memory_bytes), "--memory-swap", str(limits.memory_bytes),
                 "--cpus", f"{limits.cpus:g}", "--pids-limit", str(limits.pids),
                 "--ulimit", "core=0", "--ulimit", f"fsize={file_size_rlimit(limits)}",
                 "--tmpfs", f"/tmp:rw,nosuid,nodev,size={limits.memory_bytes},mode=1777",
                 "-v", f"{Path(input_dir).resolve()}:/input:ro",
                 "-v", f"{Path(output_dir).resolve()}:/output:rw"]
        if limits.gpu:
            argv += ["--device", "nvidia.com/gpu=all"] if self.name == "podman" else ["--gpus", "all"]
        return argv + [image.digest]

    def run(self, image: Image, input_dir, output_dir, limits: Limits) -> RunResult:
        loaded = subprocess.run(self.load_argv(image), capture_output=True, text=True)
        if loaded.returncode != 0:
            return RunResult(None, "failed", f"{self.name} load failed: {loaded.stderr.strip()[-500:]}",
                             0.0, None, "", "", backend=self.name)
        container = f"mica-{uuid.uuid4().hex[:16]}"

        def stop(proc):
            subprocess.run([self.name, "kill", container], capture_output=True)
            _kill_group(proc)

        try:
            code, timed_out, wall, _, out, err, passed = _execute(
                self.run_argv(image, input_dir, output_dir, limits, container), limits, output_dir,
                stop=stop, env=dict(os.environ))
            state = subprocess.run([self.name, "inspect", "--format", "{{.State.OOMKilled}}", container],
                                   capture_output=True, text=True).stdout.strip()
            status, reason = _classify(code, timed_out, state == "true", False, passed, limits)
            return RunResult(code, status, reason, wall, None, out, err,
                             f"{self.name}: --memory, --pids-limit, --cpus; /output: --ulimit fsize and a watch "
                             "of its size and file count", self.name)
        finally:
            subprocess.run([self.name, "rm", "-f", container], capture_output=True)


BACKENDS = {"bwrap": BwrapBackend(), "docker": EngineBackend("docker"), "podman": EngineBackend("podman")}


def _unsafe_outputs(output_dir: Path):
    """Remove what a container may not leave in /output (symlinks, hard links, fifos, sockets,
    devices: whoever reads the output next would follow them out of it); their /output paths."""
    found = []
    for dirpath, dirnames, filenames in os.walk(output_dir):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = os.lstat(path)
            kind = ("a symlink" if stat.S_ISLNK(st.st_mode) else
                    "a hard link" if stat.S_ISREG(st.st_mode) and st.st_nlink > 1 else
                    None if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) else "a special file")
            if kind:
                found.append(f"{kind} at /output/{path.relative_to(output_dir)}")
                os.unlink(path)
                if name in dirnames:
                    dirnames.remove(name)
    return found


def run(image: Image, input_dir, output_dir, *, limits: Limits, backend: str = "bwrap") -> RunResult:
    """Run ``image`` on the cases in ``input_dir`` (mounted read-only at /input); what it writes
    to /output lands in ``output_dir`` (which must exist). ``backend`` is a name in
    :data:`BACKENDS`. Returns a :class:`RunResult`; a run that fails, times out or is killed is
    a result, not an exception. A run that leaves a symlink, a hard link or a special file in
    /output has ``failed`` (they are removed: only regular files and folders are kept). A run
    that wrote more to /output than ``limits.output_bytes`` or ``limits.output_files`` allow
    ends with status ``output`` and ``output_dir`` emptied, whenever it was noticed (during the
    run, which is then stopped, or after it)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; expected one of {', '.join(BACKENDS)}")
    for what, path in (("input", input_dir), ("output", output_dir)):
        if not Path(path).is_dir():
            raise ValueError(f"the {what} folder {str(path)!r} does not exist")
    result = BACKENDS[backend].run(image, input_dir, output_dir, limits)
    passed = over_cap(output_dir, limits)
    if result.status == "output" or passed:
        empty(output_dir)  # nothing partial is scored, and the worker's disk is given back
        if result.status != "output":
            # A write the kernel stopped at the cap ends the writer with SIGXFSZ (a shell reports
            # it as 128 + 25): said as such, not as a bare exit code.
            stopped_write = result.exit_code in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ)
            ended = "a write was stopped at the cap" if stopped_write else f"it {result.reason}"
            result = dataclasses.replace(result, status="output", reason=f"{breach_reason(passed, limits)} ({ended})")
        return result
    unsafe = _unsafe_outputs(Path(output_dir))
    if unsafe:
        shown = "; ".join(unsafe[:5]) + (f" and {len(unsafe) - 5} more" if len(unsafe) > 5 else "")
        reason = f"it left {shown} (only regular files and folders are kept); {result.reason}"
        result = dataclasses.replace(result, status="failed" if result.status == "succeeded" else result.status,
                                     reason=reason)
    return result
