"""workers=N: a process pool gives the same report as one process; progress is reported."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import anonymizer
from anonymizer import synthetic


def _without_ocr_reads(counts: dict) -> dict:
    # Each worker process reads the first image of each series it meets: more reads, same outcomes.
    return {name: count for name, count in counts.items() if name != "pixels read by OCR"}


def test_two_workers_give_the_same_outputs_and_report_progress(tmp_path):
    synthetic.write_ct_series(tmp_path / "src" / "a", n_slices=6, size=16, patient_id="A")
    synthetic.write_ct_series(tmp_path / "src" / "b", n_slices=6, size=16, patient_id="B")
    (tmp_path / "src" / "junk.bin").write_bytes(b"junk")
    calls = []
    pooled = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "pooled", key=bytes(32), workers=2,
                                       progress=lambda done, total: calls.append((done, total)))
    single = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "single", key=bytes(32))
    assert [o.output for o in pooled.files] == [o.output for o in single.files]
    assert _without_ocr_reads(pooled.action_counts) == _without_ocr_reads(single.action_counts)
    assert calls[0] == (0, 13) and calls[-1] == (13, 13)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)
    assert len({o.patient_pseudonym for o in pooled.anonymized}) == 2


def test_files_sent_to_workers_in_batches_keep_their_order_and_outcomes(tmp_path):
    for patient in "ABCD":
        synthetic.write_ct_series(tmp_path / "src" / patient, n_slices=12, size=16, patient_id=patient)
    (tmp_path / "src" / "B" / "junk.bin").write_bytes(b"junk")
    calls = []
    pooled = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "pooled", key=bytes(32), workers=2,
                                       progress=lambda done, total: calls.append((done, total)))
    single = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "single", key=bytes(32))
    assert len(pooled.files) == 49
    assert [(o.source, o.status, o.output, o.reason) for o in pooled.files] == [
        (o.source, o.status, o.output, o.reason) for o in single.files
    ]
    assert _without_ocr_reads(pooled.action_counts) == _without_ocr_reads(single.action_counts)
    assert calls[0] == (0, 49) and calls[-1] == (49, 49)
    assert len(calls) < 49  # progress comes once per batch of files


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_a_worker_killed_mid_run_loses_no_file_and_leaves_no_partial_output(tmp_path):
    # SIGKILL is what the kernel's out-of-memory killer sends, and what a segfault amounts
    # to for the pool: the worker vanishes with the batches it held.
    synthetic.write_ct_series(tmp_path / "src", n_slices=300, size=64, patient_id="K")
    killed, run_over = [], threading.Event()
    earlier_children = set(_children(os.getpid()))  # not workers of this run

    def kill_a_worker():
        while not run_over.is_set():
            for worker in sorted(set(_children(os.getpid())) - earlier_children):
                time.sleep(0.02)  # let it take some files
                try:
                    os.kill(worker, signal.SIGKILL)
                except ProcessLookupError:
                    continue
                killed.append(worker)
                return
            time.sleep(0.002)

    killer = threading.Thread(target=kill_a_worker)
    killer.start()
    try:
        pooled = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "pooled", key=bytes(32), workers=2)
    finally:
        run_over.set()
        killer.join()
    single = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "single", key=bytes(32))

    assert killed
    assert [(o.status, o.output) for o in pooled.files] == [(o.status, o.output) for o in single.files]
    assert all(o.status == "anonymized" for o in pooled.files)
    written = sorted(p.relative_to(tmp_path / "pooled") for p in (tmp_path / "pooled").rglob("*") if p.is_file())
    assert written == sorted(Path(o.output) for o in single.files)  # nothing partial, nothing extra
    for outcome in single.files:
        assert (tmp_path / "pooled" / outcome.output).read_bytes() == (tmp_path / "single" / outcome.output).read_bytes()
