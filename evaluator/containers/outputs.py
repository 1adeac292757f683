"""The caps on what a run leaves in /output (``Limits.output_bytes`` and ``Limits.output_files``).

/output is a folder of the worker's disk bind-mounted into the sandbox, so a container could
fill that disk. Three layers keep it to the caps:

* the kernel's RLIMIT_FSIZE (``output_bytes`` + 1) stops any single file one byte past the cap
  (prlimit for bwrap, ``--ulimit fsize`` for docker/podman): one huge file cannot fill the disk;
* :class:`OutputWatch` measures /output from the host while the run goes on and stops the run
  as soon as a cap is passed (many files together pass it by at most what the container writes
  between two looks, a fraction of a second);
* :func:`over_cap` measures it once more after the run, and :func:`empty` deletes what a run
  over a cap wrote, so that nothing partial is scored and the disk is given back.

A size-limited tmpfs for /output (bwrap ``--size``, docker ``--mount type=tmpfs,tmpfs-size=``)
would be the kernel's own cap, but it lives and dies with the sandbox (its files never reach the
host) and its pages are charged to the run's memory limit; so it is not used. A loop-mounted
filesystem of the cap's size (root and a loop device only) would cap the total in the kernel
too, at the price of copying the outputs out after the run; not done yet.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from pathlib import Path

from .limits import Limits

__all__ = ["OutputWatch", "over_cap", "breach_reason", "empty", "describe_cap", "size_in_words", "file_size_rlimit",
           "files_cap_for"]

MIB = 1024 * 1024
# Folders and notes a run may write besides one prediction file per case (see files_cap_for).
OUTPUT_FILES_BESIDES_CASES = 100


def files_cap_for(cap: int, n_cases: int) -> int:
    """The cap on /output's files and folders for a test set of `n_cases`: `cap`, but never
    below one file per case and OUTPUT_FILES_BESIDES_CASES more (a segmentation run writes a
    mask per case, so a test set larger than the cap must still fit)."""
    return max(cap, n_cases + OUTPUT_FILES_BESIDES_CASES)


def size_in_words(size: int) -> str:
    """"64 MiB" where the size is whole MiB, else "67108865 bytes" (a cap is shown exactly)."""
    return f"{size // MIB} MiB" if size % MIB == 0 else f"{size} bytes"


def describe_cap(limits: Limits, which: str) -> str:
    """The cap in words: "64 MiB" or "1000 files and folders"."""
    if which == "files":
        return f"{limits.output_files} files and folders"
    return size_in_words(limits.output_bytes)


def over_cap(output_dir, limits: Limits) -> str | None:
    """Which cap ("bytes" or "files") what is in ``output_dir`` passes, or None. Files count
    their length (a sparse file is as long as it says: reading it costs that much); every file
    and folder counts against ``output_files``. Stops counting at the first cap passed."""
    size = count = 0
    todo = [Path(output_dir)]
    while todo:
        entries = _scandir(todo.pop())
        if entries is None:
            continue
        with entries:
            for entry in entries:
                count += 1
                if count > limits.output_files:
                    return "files"
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    todo.append(Path(entry.path))
                elif stat.S_ISREG(st.st_mode):
                    size += st.st_size
                    if size > limits.output_bytes:
                        return "bytes"
    return None


def file_size_rlimit(limits: Limits) -> int:
    """RLIMIT_FSIZE for a run: a write past it fails (SIGXFSZ), so a run that passes the byte cap
    with one file is over it by exactly one byte, and :func:`over_cap` sees it."""
    return limits.output_bytes + 1


def _scandir(folder):
    """The folder's entries; a folder the container made unreadable (a worker that is not root
    would not see what it hides) is made readable to the worker first. None if it is gone."""
    try:
        return os.scandir(folder)
    except PermissionError:
        try:
            os.chmod(folder, 0o700, follow_symlinks=False)
            return os.scandir(folder)
        except (OSError, NotImplementedError):
            return None
    except OSError:
        return None


def breach_reason(which: str, limits: Limits) -> str:
    """A run over a cap in words, naming the cap."""
    return f"it wrote more than {describe_cap(limits, which)} to /output"


def empty(output_dir):
    """Delete everything in ``output_dir`` (it stays), even folders the container made unreadable."""
    output_dir = Path(output_dir)
    for dirpath, dirnames, _ in os.walk(output_dir):
        for name in dirnames:
            try:
                os.chmod(os.path.join(dirpath, name), 0o700, follow_symlinks=False)
            except (OSError, NotImplementedError):
                pass
    for entry in list(output_dir.iterdir()):
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


class OutputWatch:
    """Measures ``output_dir`` every ``interval`` seconds (or, where measuring takes long, four
    times as long as it took) until :meth:`finish`; the first time a cap is passed it remembers
    which and calls ``stop()`` once."""

    def __init__(self, output_dir, limits: Limits, stop, interval=0.2):
        self.output_dir, self.limits, self.stop_run, self.interval = Path(output_dir), limits, stop, interval
        self.passed = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while True:
            started = time.monotonic()
            passed = over_cap(self.output_dir, self.limits)
            if passed:
                self.passed = passed
                self.stop_run()
                return
            if self.done.wait(max(self.interval, 4 * (time.monotonic() - started))):
                return

    def finish(self):
        """Which cap was passed while the run went on ("bytes", "files"), or None."""
        self.done.set()
        self.thread.join()
        return self.passed
