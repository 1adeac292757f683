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
