"""No input can make Mica write outside OUT: paths are made of generated names only.

Bad inputs tried: a StudyInstanceUID `1.2.840.10008.1/../../../X` (under the DICOM root, so
an earlier version kept it verbatim and wrote above OUT), a Series Instance UID equal to a
registry UID, a Frame of Reference UID under the DICOM root that the registry does not hold.
"""

from __future__ import annotations

import pydicom
from pydicom.uid import CTImageStorage, UID_dictionary

import anonymizer
from anonymizer import synthetic
from .helpers import output_files

TRAVERSING_UID = "1.2.840.10008.1/../../../X"


def test_a_crafted_uid_under_the_dicom_root_cannot_leave_out(tmp_path, key):
    src = tmp_path / "deep" / "src"
    path = synthetic.write_ct_series(src, n_slices=1, size=16, study_uid=TRAVERSING_UID)[0]
    dataset = pydicom.dcmread(path)
    dataset.SeriesInstanceUID = CTImageStorage  # a registry UID where an instance UID belongs
    dataset.FrameOfReferenceUID = "1.2.840.10008.99.77.1"  # under the root, not in the registry
    dataset.save_as(path)
    before = {p for p in tmp_path.rglob("*")}
    out = tmp_path / "deep" / "out"

    report = anonymizer.anonymize_tree(src, out, key=key)

    assert [o.status for o in report.files] == ["anonymized"]
    created_outside_out = {p for p in tmp_path.rglob("*") if p not in before and out not in p.parents and p != out}
    assert created_outside_out == set()
    assert not (tmp_path / "X").exists() and not (tmp_path / "deep" / "X").exists()
    written = output_files(out)
    assert len(written) == 1
    relative = written[0].relative_to(out)
    assert all(part.startswith("2.25.") for part in relative.parts)
    result = pydicom.dcmread(written[0])
    assert result.StudyInstanceUID.startswith("2.25.")
    assert result.SeriesInstanceUID.startswith("2.25.")
    assert result.FrameOfReferenceUID.startswith("2.25.")
    assert result.SOPClassUID == CTImageStorage  # the registry UID in its proper place stays


def test_only_registry_uids_are_kept_verbatim(key):
    from anonymizer.dicom import is_well_known_uid

    assert all(is_well_known_uid(uid) for uid in list(UID_dictionary)[:50])
    assert not is_well_known_uid(TRAVERSING_UID)
    assert not is_well_known_uid("1.2.840.10008.5.1.4.1.1.2.999")
