"""Bad input: each file gets a clear reason, the run goes on, nothing unsafe reaches OUT."""

from __future__ import annotations

import os
import stat
import zipfile

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.dataelem import RawDataElement
from pydicom.tag import Tag

import anonymizer
from anonymizer import inputs, synthetic
from .helpers import output_files


def run(src, tmp_path, key):
    out = tmp_path / "out"
    report = anonymizer.anonymize_tree(src, out, key=key)
    assert len(output_files(out)) == len(report.anonymized)
    return report, {outcome.private_source: outcome for outcome in report.files}


def one_ct(folder, name="slice.dcm", **kwargs):
    return synthetic.write_ct_series(folder, n_slices=1, size=16, file_names=name, **kwargs)[0]


def test_it_refuses_zip_entries_that_escape_or_are_links(tmp_path, key):
    good = one_ct(tmp_path / "make")
    archive = tmp_path / "upload.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.write(good, "study/good.dcm")
        # ZipInfo keeps names as given (ZipFile.write would clean them, an attacker would not).
        for name in ("../escape.dcm", "/etc/absolute.dcm", "study\\windows.dcm"):
            opened.writestr(zipfile.ZipInfo(name), good.read_bytes())
        link = zipfile.ZipInfo("study/link.dcm")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        opened.writestr(link, "/etc/passwd")
    report, by_source = run(archive, tmp_path, key)
    assert by_source["study/good.dcm"].status == "anonymized"
    assert "path traversal" in by_source["../escape.dcm"].reason
    assert "absolute path" in by_source["/etc/absolute.dcm"].reason
    assert "backslash" in by_source["study\\windows.dcm"].reason
    assert "symbolic link" in by_source["study/link.dcm"].reason
    assert not (tmp_path / "escape.dcm").exists()


def test_it_refuses_a_zip_bomb_by_ratio(tmp_path, key):
    archive = tmp_path / "bomb.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as opened:
        opened.writestr("zeros.dcm", b"\0" * (20 * 1024 * 1024))
        opened.write(one_ct(tmp_path / "make"), "fine.dcm")
    report, by_source = run(archive, tmp_path, key)
    assert "zip bomb suspected" in by_source["zeros.dcm"].reason
    assert by_source["fine.dcm"].status == "anonymized"


def test_it_stops_extracting_an_entry_that_expands_past_its_cap(tmp_path, monkeypatch):
    # The declared sizes are checked when listing; the real bytes are checked while copying.
    archive = tmp_path / "lying.zip"
    with zipfile.ZipFile(archive, "w", compression=zipfile.ZIP_DEFLATED) as opened:
        opened.writestr("big.bin", b"\0" * 1_000_000)
    monkeypatch.setattr(inputs, "MAX_COMPRESSION_RATIO", 10)
    with pytest.raises(inputs.UnsafeInput, match="zip bomb suspected"):
        inputs.extract_entry(str(archive), "big.bin", tmp_path / "copy")


def test_it_caps_the_total_uncompressed_size(tmp_path, key, monkeypatch):
    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        for index in range(3):
            opened.write(one_ct(tmp_path / f"make{index}", patient_id=f"P{index}"), f"{index}.dcm")
    listing = zipfile.ZipFile(archive)
    first_two = listing.getinfo("0.dcm").file_size + listing.getinfo("1.dcm").file_size
    monkeypatch.setattr(inputs, "MAX_TOTAL_UNCOMPRESSED_BYTES", first_two)
    report, by_source = run(archive, tmp_path, key)
    assert [o.status for o in report.files] == ["anonymized", "anonymized", "quarantined"], [o.reason for o in report.files]
    assert "total uncompressed size" in by_source["2.dcm"].reason


def test_it_does_not_follow_symbolic_links_in_folders(tmp_path, key):
    src = tmp_path / "src"
    one_ct(src)
    outside = one_ct(tmp_path / "outside", name="secret.dcm", patient_id="OUTSIDE")
    os.symlink(outside, src / "link.dcm")
    os.symlink(outside.parent, src / "linked_folder")
    report, by_source = run(src, tmp_path, key)
    assert by_source["slice.dcm"].status == "anonymized"
    assert "symbolic link" in by_source["link.dcm"].reason
    assert "symbolic link" in by_source["linked_folder"].reason


def test_it_quarantines_non_images_truncated_and_corrupt_files(tmp_path, key):
    src = tmp_path / "src"
    good = one_ct(src)
    (src / "notes.txt").write_text("Patient NIGHTINGALE called")
    data = good.read_bytes()
    (src / "truncated.dcm").write_bytes(data[: len(data) - 100])
    (src / "cut_in_header.dcm").write_bytes(data[:400])
    (src / "corrupt.dcm").write_bytes(b"\0" * 128 + b"DICM" + os.urandom(300))
    (src / "empty.dcm").write_bytes(b"")
    report, by_source = run(src, tmp_path, key)
    assert by_source["slice.dcm"].status == "anonymized"
    assert by_source["notes.txt"].reason == "not a DICOM, PNG or JPEG file"
    assert by_source["truncated.dcm"].reason.startswith("truncated: (7FE0,0010) PixelData")
    for name in ("cut_in_header.dcm", "corrupt.dcm", "empty.dcm"):
        assert by_source[name].status == "quarantined" and by_source[name].reason, name


def test_it_quarantines_unsupported_transfer_syntaxes(tmp_path, key):
    src = tmp_path / "src"
    path = one_ct(src)
    dataset = pydicom.dcmread(path)
    dataset.file_meta.TransferSyntaxUID = "1.2.3.4.5.6"
    dataset.save_as(src / "odd_syntax.dcm")
    report, by_source = run(src, tmp_path, key)
    assert by_source["odd_syntax.dcm"].reason == (
        "unsupported transfer syntax (not a standard DICOM transfer syntax)"
    )


def test_it_removes_huge_private_blobs(tmp_path, key):
    src = tmp_path / "src"
    path = one_ct(src)
    dataset = pydicom.dcmread(path)
    block = dataset.private_block(0x0029, "BIG VENDOR BLOB", create=True)
    block.add_new(0x10, "OB", b"NIGHTINGALE" * (3 * 1024 * 1024 // 11))
    dataset.save_as(src / "blob.dcm")
    report, by_source = run(src, tmp_path, key)
    outcome = by_source["blob.dcm"]
    assert outcome.status == "anonymized"
    assert (tmp_path / "out" / outcome.output).stat().st_size < 100_000


def test_a_number_attribute_holding_letters_is_removed(tmp_path, key):
    src = tmp_path / "src"
    path = one_ct(src)
    dataset = pydicom.dcmread(path)
    # InstanceNumber "1A" is not an integer; a raw element bypasses pydicom's own check.
    dataset[0x00200013] = RawDataElement(Tag(0x00200013), "IS", 2, b"1A", 0, False, True)
    dataset.save_as(src / "bad_is.dcm")
    report, by_source = run(src, tmp_path, key)
    outcome = by_source["bad_is.dcm"]
    assert outcome.status == "anonymized"
    assert b"1A" not in (tmp_path / "out" / outcome.output).read_bytes()
    assert "InstanceNumber" not in pydicom.dcmread(tmp_path / "out" / outcome.output)


def test_an_invalid_value_the_profile_must_read_quarantines_the_file_naming_the_tag(tmp_path, key):
    src = tmp_path / "src"
    path = one_ct(src)
    dataset = pydicom.dcmread(path)
    dataset[0x0020000D] = RawDataElement(Tag(0x0020000D), "UI", 6, b"1.2.\xe93", 0, False, True)
    dataset.save_as(src / "bad_uid.dcm")
    dataset = pydicom.dcmread(path)
    dataset[0x00080020] = RawDataElement(Tag(0x00080020), "DA", 10, b"2021-03-14", 0, False, True)
    dataset.SOPInstanceUID = dataset.SOPInstanceUID + ".2"
    dataset.save_as(src / "bad_date.dcm")
    report, by_source = run(src, tmp_path, key)
    assert by_source["bad_uid.dcm"].reason == "invalid value in (0020,000D) StudyInstanceUID: not ASCII"
    bad_date = by_source["bad_date.dcm"]
    assert bad_date.status == "anonymized"  # an unparseable date is emptied, never kept
    assert pydicom.dcmread(tmp_path / "out" / bad_date.output).StudyDate == ""


def test_pydicoms_bad_vr_file_is_quarantined_naming_the_tag(tmp_path, key):
    src = tmp_path / "src"
    src.mkdir()
    (src / "badVR.dcm").write_bytes(open(get_testdata_file("badVR.dcm"), "rb").read())
    report, by_source = run(src, tmp_path, key)
    assert by_source["badVR.dcm"].reason == "invalid value in (0028,0008) NumberOfFrames: not a number"


def test_it_quarantines_objects_without_pixels(tmp_path, key):
    src = tmp_path / "src"
    src.mkdir()
    (src / "plan.dcm").write_bytes(open(get_testdata_file("rtplan.dcm"), "rb").read())
    report, by_source = run(src, tmp_path, key)
    assert by_source["plan.dcm"].reason == "not an image: SOP Class RT Plan Storage has no Pixel Data (7FE0,0010)"


def test_it_quarantines_a_duplicate_instance(tmp_path, key):
    src = tmp_path / "src"
    path = one_ct(src)
    (src / "copy.dcm").write_bytes(path.read_bytes())
    report, by_source = run(src, tmp_path, key)
    assert by_source["copy.dcm"].status == "anonymized"  # listed first
    assert by_source["slice.dcm"].reason.startswith("duplicate: another input already produced")


def test_fatal_errors_are_raised_before_anything_is_written(tmp_path, key):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        anonymizer.anonymize_tree(tmp_path / "missing", tmp_path / "out", key=key)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    src = tmp_path / "src"
    one_ct(src)
    with pytest.raises(ValueError, match="not empty"):
        anonymizer.anonymize_tree(src, tmp_path / "full", key=key)
    with pytest.raises(anonymizer.KeyFileError, match="at least 32"):
        anonymizer.anonymize_tree(src, tmp_path / "out", key=b"short")
    with pytest.raises(ValueError, match="unknown profile"):
        anonymizer.anonymize_tree(src, tmp_path / "out", key=key, profile="nope")


def test_reasons_and_report_names_never_quote_identifying_values(tmp_path, key):
    # Bad inputs tried: NumberOfFrames and Rows holding a name, an unknown transfer syntax
    # holding a name, a SOP Class that is a name, a broken JPEG frame, a text file, all in
    # files whose names are patient names.
    src = tmp_path / "src"
    path = one_ct(src, name="DOE_JOHN_frames.dcm")
    dataset = pydicom.dcmread(path)
    dataset[0x00280008] = RawDataElement(Tag(0x00280008), "IS", 8, b"DOE JOHN", 0, False, True)
    dataset.save_as(path)
    dataset = pydicom.dcmread(path)
    del dataset[0x00280008]
    dataset[0x00280010] = RawDataElement(Tag(0x00280010), "US", 8, b"DOE JOHN", 0, False, True)
    dataset.SOPInstanceUID = dataset.SOPInstanceUID + ".2"
    dataset.save_as(src / "DOE_JOHN_rows.dcm")
    dataset = pydicom.dcmread(path)
    dataset.file_meta.TransferSyntaxUID = "DOE.JOHN"
    dataset.save_as(src / "DOE_JOHN_syntax.dcm")
    del dataset.PixelData
    dataset.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    dataset.SOPClassUID = "DOE.JOHN"
    dataset.save_as(src / "DOE_JOHN_no_pixels.dcm")
    (src / "DOE_JOHN_notes.txt").write_text("DOE JOHN")

    report, by_source = run(src, tmp_path, key)

    assert len(report.quarantined) == 5
    for outcome in report.files:
        assert "DOE" not in outcome.reason.upper() and "JOHN" not in outcome.reason.upper(), outcome.reason
        assert outcome.source.startswith("file-") and "DOE" not in outcome.source
        assert outcome.private_source.startswith("DOE_JOHN_")
    assert by_source["DOE_JOHN_frames.dcm"].reason == "invalid value in (0028,0008) NumberOfFrames: not a number"
    again, _ = run(src, tmp_path / "again", key)
    assert [o.source for o in again.files] == [o.source for o in report.files]  # stable for a key
    other, _ = run(src, tmp_path / "other", anonymizer.new_key())
    assert not {o.source for o in other.files} & {o.source for o in report.files}


def test_duplicate_entry_names_in_a_zip_are_reported_as_such(tmp_path, key):
    good = one_ct(tmp_path / "make")
    archive = tmp_path / "dupes.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.write(good, "study/a.dcm")
        with pytest.warns(UserWarning, match="Duplicate name"):
            opened.writestr("study/a.dcm", b"a second entry of the same name")
        opened.write(good, "study/b.dcm")
    report = anonymizer.anonymize_tree(archive, tmp_path / "out", key=key)
    reasons = [(o.private_source, o.status, o.reason) for o in report.files]
    duplicate = "duplicate entry name: 2 entries of the zip share this name, so which one is meant is ambiguous; none of them is used"
    assert reasons == [("study/a.dcm", "quarantined", duplicate), ("study/a.dcm", "quarantined", duplicate),
                       ("study/b.dcm", "anonymized", None)]


def test_a_corrupt_central_directory_stops_the_run_with_a_clear_error(tmp_path, key):
    good = one_ct(tmp_path / "make")
    archive = tmp_path / "broken.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        opened.write(good, "a.dcm")
    data = archive.read_bytes()
    archive.write_bytes(data[: data.rindex(b"PK\x01\x02")] + b"\0" * 40)  # central directory gone
    with pytest.raises(inputs.UnreadableSource, match="not a readable zip archive"):
        anonymizer.anonymize_tree(archive, tmp_path / "out", key=key)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_per_upload_limits_quarantine_with_clear_reasons(tmp_path, key):
    # Issue 20: 100,000 tiny entries held a worker 404 s; a 157 KB 16-bit PNG of 9000x9000
    # pixels cost 820 MB to decode. Here with small limits, so the test stays quick.
    import numpy as np
    from .helpers import png_with_metadata

    archive = tmp_path / "many.zip"
    with zipfile.ZipFile(archive, "w") as opened:
        for index in range(30):
            opened.writestr(f"tiny/{index:03d}.txt", b"x")
    report = anonymizer.anonymize_tree(archive, tmp_path / "out-many", key=key, max_files=10)
    assert [o.reason for o in report.files[:10]] == ["not a DICOM, PNG or JPEG file"] * 10
    assert all(o.reason.startswith("over the limit of files per upload: this upload holds 30 files and only "
                                   "the first 10 are processed (max_files)") for o in report.files[10:])

    src = tmp_path / "big"
    src.mkdir()
    (src / "wide.png").write_bytes(png_with_metadata(np.zeros((300, 400), dtype=np.uint16)))
    one_ct(src, name="us.dcm")
    dataset = pydicom.dcmread(src / "us.dcm")
    dataset.BurnedInAnnotation = "YES"  # must be decoded to be cleaned
    dataset.save_as(src / "us.dcm")
    report = anonymizer.anonymize_tree(src, tmp_path / "out-big", key=key, max_decoded_pixels=100)
    by_source = {o.private_source: o for o in report.files}
    assert by_source["wide.png"].reason == (
        "image of 400x300 pixels (120000 decoded) is over the limit of 100 decoded pixels per image "
        "(max_decoded_pixels)")
    assert by_source["us.dcm"].reason == (
        "its pixels must be decoded to check for burned-in text, and 1 frame(s) of 16x16 are over the "
        "limit of 100 decoded pixels (max_decoded_pixels)")
