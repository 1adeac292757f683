"""Elements settled once per distinct value, and values peeked once, change no output byte.

`DatasetAnonymizer.settle` keeps the outcome of elements that depend on themselves alone
(remapped UIDs, shifted dates, device texts, codes, walked and emptied sequences) as pydicom
will write it, and `peek_value` keeps decoded values: both only save time. A run with them is
compared, byte for byte and action for action, with a run without them, on series whose files
repeat their elements (the cache is then used), in the three encodings and several character sets.
"""

from __future__ import annotations

import shutil

import pydicom
import pytest
from pydicom.data import get_testdata_file

import anonymizer
from anonymizer import dicom, elements, synthetic

from .helpers import LATIN1_NAME, UTF8_NAME


@pytest.fixture(scope="module")
def repeating_inputs(tmp_path_factory):
    src = tmp_path_factory.mktemp("settled") / "src"
    synthetic.write_ct_series(src / "ct", n_slices=4, size=32, per_frame_groups=True)
    synthetic.write_ct_series(src / "latin1", n_slices=3, size=32, patient_name=LATIN1_NAME,
                              patient_id="PID-LATIN1", charset="ISO_IR 100")
    synthetic.write_ct_series(src / "utf8", n_slices=3, size=32, patient_name=UTF8_NAME,
                              patient_id="PID-UTF8", charset="ISO_IR 192")
    # Explicit and implicit VR little endian, explicit big endian, deflated: each file three
    # times (met once, settled, taken from what was settled).
    (src / "files").mkdir()
    for index, name in enumerate(("CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "image_dfl.dcm")):
        dataset = pydicom.dcmread(get_testdata_file(name))
        dataset.BurnedInAnnotation = "NO"  # pixels are tested elsewhere
        for copy in range(3):
            dataset.SOPInstanceUID = f"1.2.826.0.1.3680043.10.543.88.{index}.{copy}"
            dataset.save_as(src / "files" / f"{copy}_{name}")
    return src


def _run(src, out, profile):
    dicom.SETTLED.clear()
    elements.PEEKED.clear()
    report = anonymizer.anonymize_tree(src, out, key=bytes(range(32)), profile=profile, keep_uid_map=True, ocr=False)
    assert [outcome.reason for outcome in report.quarantined] == []
    return report.to_json(private=True), {path.relative_to(out): path.read_bytes()
                                          for path in sorted(out.rglob("*")) if path.is_file()}


@pytest.mark.parametrize("profile", ["basic", "strict"])
def test_settling_and_peeking_change_no_output_byte(repeating_inputs, profile, tmp_path, monkeypatch):
    fast_report, fast_files = _run(repeating_inputs, tmp_path / "fast", profile)
    # Outcomes were kept (not only elements met once): the test would prove nothing otherwise.
    assert any(dicom.SETTLED.values())
    monkeypatch.setattr(dicom, "SETTLED_HANDLERS", frozenset())
    monkeypatch.setattr(elements, "CACHEABLE", set())
    plain_report, plain_files = _run(repeating_inputs, tmp_path / "plain", profile)
    assert sorted(fast_files) == sorted(plain_files)
    assert len(fast_files) == 22
    assert [path for path in fast_files if fast_files[path] != plain_files[path]] == []
    assert fast_report == plain_report
    shutil.rmtree(tmp_path / "fast")
