"""workers=N: a process pool gives the same report as one process; progress is reported."""

from __future__ import annotations

import anonymizer
from anonymizer import synthetic


def test_two_workers_give_the_same_outputs_and_report_progress(tmp_path):
    synthetic.write_ct_series(tmp_path / "src" / "a", n_slices=6, size=16, patient_id="A")
    synthetic.write_ct_series(tmp_path / "src" / "b", n_slices=6, size=16, patient_id="B")
    (tmp_path / "src" / "junk.bin").write_bytes(b"junk")
    calls = []
    pooled = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "pooled", key=bytes(32), workers=2,
                                       progress=lambda done, total: calls.append((done, total)))
    single = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "single", key=bytes(32))
    assert [o.output for o in pooled.files] == [o.output for o in single.files]
    assert pooled.action_counts == single.action_counts
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
    assert pooled.action_counts == single.action_counts
    assert calls[0] == (0, 49) and calls[-1] == (49, 49)
    assert len(calls) < 49  # progress comes once per batch of files
