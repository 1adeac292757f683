"""The PHI corpus: nothing planted survives, and what makes the images useful does."""

from __future__ import annotations


import numpy as np
import pydicom
from PIL import Image

import anonymizer
from anonymizer import synthetic

from .helpers import encodings_of, output_files


def test_every_file_of_the_corpus_is_anonymized_or_quarantined_with_a_reason(phi_corpus, phi_run):
    report = phi_run["report"]
    sources = {outcome.private_source for outcome in report.files}
    inputs = {path.relative_to(phi_corpus["root"]).as_posix() for path in phi_corpus["root"].rglob("*") if path.is_file()}
    assert sources == inputs
    assert not report.quarantined, [(o.private_source, o.reason) for o in report.quarantined]
    assert len(output_files(phi_run["out"])) == len(report.anonymized)


def test_no_planted_value_appears_in_any_output_byte_or_path(phi_corpus, phi_run):
    leaks = []
    for path in output_files(phi_run["out"]):
        data = path.read_bytes()
        relative = path.relative_to(phi_run["out"]).as_posix()
        for label, value in phi_corpus["planted"].items():
            for encoded in encodings_of(value):
                if encoded in data:
                    leaks.append(f"{label} {value!r} in {relative}")
                    break
            if value.lower() in relative.lower():
                leaks.append(f"{label} {value!r} in the path {relative}")
    assert leaks == []


def test_no_original_uid_appears_in_any_output_byte(phi_corpus, phi_run):
    original_uids = set(phi_run["report"].uid_map)
    assert original_uids
    for path in output_files(phi_run["out"]):
        data = path.read_bytes()
        leaked = [uid for uid in original_uids if uid.encode() in data]
        assert leaked == [], path


def test_pixels_and_geometry_are_unchanged(phi_corpus, phi_run):
    by_source = {outcome.private_source: outcome for outcome in phi_run["report"].files}
    for original_path in phi_corpus["ct"] + phi_corpus["latin1"] + [phi_corpus["radiograph"]]:
        source = original_path.relative_to(phi_corpus["root"]).as_posix()
        original = pydicom.dcmread(original_path)
        result = pydicom.dcmread(phi_run["out"] / by_source[source].output)
        assert result.PixelData == original.PixelData
        for keyword in ("Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation",
                        "PhotometricInterpretation", "SamplesPerPixel", "PixelSpacing",
                        "ImageOrientationPatient", "ImagePositionPatient", "SliceThickness",
                        "RescaleIntercept", "RescaleSlope", "WindowCenter", "WindowWidth", "Modality",
                        "SOPClassUID", "PatientSex", "PatientAge", "PatientWeight", "PatientSize"):
            assert result.get(keyword) == original.get(keyword), (source, keyword)


def test_the_record_of_deidentification_is_written(phi_run):
    outcome = next(o for o in phi_run["report"].anonymized if o.kind == "dicom")
    dataset = pydicom.dcmread(phi_run["out"] / outcome.output)
    assert dataset.PatientIdentityRemoved == "YES"
    codes = [item.CodeValue for item in dataset.DeidentificationMethodCodeSequence]
    assert codes[0] == "113100"
    assert {"113107", "113108", "113111"} <= set(codes)
    assert dataset.LongitudinalTemporalInformationModified == "MODIFIED"
    assert dataset.PatientName == outcome.patient_pseudonym == dataset.PatientID
    assert dataset.file_meta.MediaStorageSOPInstanceUID == dataset.SOPInstanceUID
    assert "SourceApplicationEntityTitle" not in dataset.file_meta


def test_uid_links_stay_intact_across_files(phi_corpus, phi_run):
    report = phi_run["report"]
    ct_sources = [p.relative_to(phi_corpus["root"]).as_posix() for p in phi_corpus["ct"]]
    by_source = {o.private_source: o for o in report.files}
    datasets = [pydicom.dcmread(phi_run["out"] / by_source[s].output) for s in ct_sources]
    assert len({d.StudyInstanceUID for d in datasets}) == 1
    assert len({d.SeriesInstanceUID for d in datasets}) == 1
    assert len({d.FrameOfReferenceUID for d in datasets}) == 1
    assert len({d.SOPInstanceUID for d in datasets}) == len(datasets)
    for previous, current in zip(datasets, datasets[1:]):
        assert current.SourceImageSequence[0].ReferencedSOPInstanceUID == previous.SOPInstanceUID
        assert current.ReferencedImageSequence[0].ReferencedSOPInstanceUID == datasets[0].SOPInstanceUID
        # The SOP Class UID in a reference is a registry UID: kept.
        assert current.SourceImageSequence[0].ReferencedSOPClassUID == pydicom.uid.CTImageStorage
    for dataset in datasets:
        assert dataset.StudyInstanceUID.startswith("2.25.")
        assert dataset.SOPInstanceUID == report.uid_map[
            synthetic.uid_from(synthetic.uid_from(synthetic.uid_from("PID-000001", "study"), "series", "64"),
                               str(datasets.index(dataset)))]


def test_per_frame_functional_groups_are_cleaned(phi_corpus, phi_run):
    outcome = phi_run["report"].files[0]
    source = phi_corpus["ct"][0].relative_to(phi_corpus["root"]).as_posix()
    outcome = next(o for o in phi_run["report"].files if o.private_source == source)
    dataset = pydicom.dcmread(phi_run["out"] / outcome.output)
    frame = dataset.PerFrameFunctionalGroupsSequence[0]
    content = frame.FrameContentSequence[0]
    assert "FrameComments" not in content
    assert content.FrameAcquisitionDateTime != "20210314101532"
    derivation = frame.DerivationImageSequence[0]
    assert "DerivationDescription" not in derivation
    assert derivation.SourceImageSequence[0].ReferencedSOPInstanceUID == dataset.SOPInstanceUID


def test_dates_of_one_patient_move_by_the_same_shift_and_times_are_kept(phi_corpus, phi_run):
    shifts = set()
    for outcome in phi_run["report"].anonymized:
        if outcome.kind != "dicom" or outcome.patient_pseudonym != phi_run["report"].anonymized[0].patient_pseudonym:
            continue
        dataset = pydicom.dcmread(phi_run["out"] / outcome.output)
        shifted = pydicom.valuerep.DA(dataset.StudyDate)
        shifts.add((pydicom.valuerep.DA("20210314") - shifted).days)
        assert dataset.StudyTime == "101530"
        assert dataset.PatientBirthDate == ""
    assert len(shifts) == 1 and 1 <= shifts.pop() <= 3650


def test_safe_private_elements_are_kept_and_all_others_removed(phi_corpus, phi_run):
    source = phi_corpus["ct"][0].relative_to(phi_corpus["root"]).as_posix()
    outcome = next(o for o in phi_run["report"].files if o.private_source == source)
    dataset = pydicom.dcmread(phi_run["out"] / outcome.output)
    private_tags = [element.tag for element in dataset if element.tag.is_private]
    assert dataset.private_block(0x0019, "SIEMENS MR HEADER")[0x0C].value == "1000"
    assert sorted(private_tags) == [0x00190010, 0x0019100C]


def test_burned_in_text_is_blanked_by_the_matching_rule(phi_corpus, phi_run):
    source = phi_corpus["ultrasound"].relative_to(phi_corpus["root"]).as_posix()
    outcome = next(o for o in phi_run["report"].files if o.private_source == source)
    dataset = pydicom.dcmread(phi_run["out"] / outcome.output)
    original = pydicom.dcmread(phi_corpus["ultrasound"])
    assert original.pixel_array[:48].max() == 255  # the text was there
    assert dataset.pixel_array[:48].max() == 0
    assert np.array_equal(dataset.pixel_array[48:], original.pixel_array[48:])
    assert dataset.BurnedInAnnotation == "NO"
    assert "113101" in [item.CodeValue for item in dataset.DeidentificationMethodCodeSequence]


def test_png_and_jpeg_keep_pixels_and_bit_depth(phi_corpus, phi_run):
    for outcome in phi_run["report"].files:
        if outcome.kind not in ("png", "jpeg"):
            continue
        with Image.open(phi_corpus["root"] / outcome.private_source) as original, Image.open(phi_run["out"] / outcome.output) as result:
            assert result.mode == original.mode
            assert np.array_equal(np.asarray(result), np.asarray(original))
        assert outcome.output.startswith("images/")


def test_two_runs_with_the_same_key_give_the_same_outputs(phi_corpus, phi_run, key, tmp_path):
    again = anonymizer.anonymize_tree(phi_corpus["root"], tmp_path / "again", key=key)
    assert [o.output for o in again.files] == [o.output for o in phi_run["report"].files]
    assert [o.patient_pseudonym for o in again.files] == [o.patient_pseudonym for o in phi_run["report"].files]
    first = phi_run["report"].anonymized[0]
    assert (tmp_path / "again" / first.output).read_bytes() == (phi_run["out"] / first.output).read_bytes()


def test_another_key_gives_other_uids_and_pseudonyms(phi_corpus, phi_run, tmp_path):
    other = anonymizer.anonymize_tree(phi_corpus["root"], tmp_path / "other", key=anonymizer.new_key())
    first = {o.private_source: o for o in phi_run["report"].files}
    for outcome in other.anonymized:
        if outcome.kind == "dicom":
            assert outcome.study_uid != first[outcome.private_source].study_uid
            assert outcome.patient_pseudonym != first[outcome.private_source].patient_pseudonym


def test_the_report_lists_actions_and_keeps_the_uid_map_out_of_its_json(phi_run, tmp_path):
    report = phi_run["report"]
    assert report.action_counts["pseudonym"] > 0
    assert report.action_counts["X"] > 0
    text = report.to_json()
    some_old_uid = next(iter(report.uid_map))
    assert some_old_uid not in text
    report.write(tmp_path / "report.json")
    report.write_uid_map(tmp_path / "uids.json")
    assert some_old_uid in (tmp_path / "uids.json").read_text()


def test_every_planted_value_is_really_in_the_inputs(phi_corpus):
    # Guards the leak test: a value that was never planted could never be found leaking.
    files = [p for p in phi_corpus["root"].rglob("*") if p.is_file()]
    contents = [p.read_bytes() for p in files]
    paths = " ".join(p.relative_to(phi_corpus["root"]).as_posix() for p in files)
    missing = []
    for label, value in phi_corpus["planted"].items():
        in_bytes = any(encoded in data for data in contents for encoded in encodings_of(value))
        if not in_bytes and value.lower() not in paths.lower():
            missing.append(label)
    assert missing == []
