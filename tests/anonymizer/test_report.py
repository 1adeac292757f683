"""The public report and the organizer's private one (the identifier map's source)."""

from __future__ import annotations

import json

import pydicom

import anonymizer
from anonymizer import synthetic


def test_the_private_report_maps_each_output_to_the_senders_identifiers_and_the_public_one_does_not(tmp_path):
    (ct,) = synthetic.write_ct_series(tmp_path / "src" / "DOE JOHN", n_slices=1, size=16, patient_id="MRN-77341")
    dataset = pydicom.dcmread(ct)
    dataset.AccessionNumber = "ACC-5512"
    dataset.IssuerOfPatientID = "ST MUNGO HOSPITAL"
    dataset.save_as(ct)
    ultrasound = synthetic.write_ultrasound(tmp_path / "src" / "DOE JOHN" / "us.dcm", patient_id="MRN-77341",
                                         model="NO RULE 9")  # quarantined: no rule cleans it
    original_us = pydicom.dcmread(ultrasound)
    report = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "out", key=bytes(32))

    by_path = {entry["private_source"]: entry for entry in report.to_dict(private=True)["files"]}
    ct_entry = by_path[f"DOE JOHN/{ct.name}"]
    assert ct_entry["status"] == "anonymized"
    assert ct_entry["original"] == {
        "patient_id": "MRN-77341", "issuer_of_patient_id": "ST MUNGO HOSPITAL", "accession_number": "ACC-5512",
        "study_uid": dataset.StudyInstanceUID, "series_uid": dataset.SeriesInstanceUID,
        "sop_instance_uid": dataset.SOPInstanceUID,
    }
    assert ct_entry["sop_instance_uid"].startswith("2.25.")  # the new one, which names the output
    # A quarantined DICOM file keeps its identifiers too, so the organizer knows which one it was.
    us_entry = by_path["DOE JOHN/us.dcm"]
    assert us_entry["status"] == "quarantined"
    assert us_entry["original"]["sop_instance_uid"] == original_us.SOPInstanceUID

    public = report.to_json()
    for value in ("MRN-77341", "ST MUNGO", "ACC-5512", "DOE JOHN", dataset.SOPInstanceUID, dataset.StudyInstanceUID):
        assert value not in public
    assert all(set(entry) & {"private_source", "original"} == set() for entry in json.loads(public)["files"])
    report.write(tmp_path / "private.json", private=True)
    assert "ACC-5512" in (tmp_path / "private.json").read_text()
