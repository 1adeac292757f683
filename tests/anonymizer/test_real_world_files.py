"""pydicom's bundled test files (shipped in the installed wheel) as real-world inputs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file

import anonymizer
from anonymizer.profile import actions_by_tag

# Real files from different vendors, syntaxes and encodings (all shipped inside pydicom).
REAL_FILES = [
    "CT_small.dcm",  # GE CT, explicit little endian, with private tags
    "MR_small.dcm",  # MR
    "MR_small_implicit.dcm",  # implicit VR
    "MR_small_bigendian.dcm",  # explicit big endian
    "MR_small_RLE.dcm",  # RLE Lossless, kept compressed
    "JPEG2000.dcm",  # JPEG 2000, kept compressed (SC: quarantined for burned-in text)
    "liver_1frame.dcm",  # multi-frame enhanced with per-frame functional groups
    "rtdose.dcm",  # RT Dose, multi-frame
    "examples_overlay.dcm",  # overlays: (60xx,3000) must be removed
    "examples_palette.dcm",  # ultrasound: quarantined for burned-in text
    "MR_truncated.dcm",  # truncated pixel data
    "rtplan.dcm",  # not an image
    "image_dfl.dcm",  # deflated
]


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    src = tmp_path_factory.mktemp("real") / "src"
    src.mkdir()
    for index, name in enumerate(REAL_FILES):
        # A folder per file: several share SOP Instance UIDs (they are one image re-encoded).
        (src / str(index)).mkdir()
        shutil.copy(get_testdata_file(name), src / str(index) / name)
    dicomdir_cases = Path(get_testdata_file("DICOMDIR")).parent / "77654033"
    shutil.copytree(dicomdir_cases, src / "dicomdir-cases")
    out = tmp_path_factory.mktemp("real-out") / "out"
    report = anonymizer.anonymize_tree(src, out, key=bytes(32), profile="strict")
    return src, out, report


def identifying_values(dataset) -> set[str]:
    """Values the profile must not let through: every X/Z/D attribute and every person name."""
    table = actions_by_tag()
    values = set()
    for element in dataset.iterall():
        tag = int(element.tag)
        action = table.get(tag)
        sensitive = action in ("X", "Z", "D") or element.VR == "PN" or element.tag.is_private
        if not sensitive or element.VR in ("SQ", "OB", "OW", "UN", "TM", "US", "SS", "UL", "SL", "FL", "FD"):
            continue
        values_here = element.value if element.VM > 1 else [element.value]
        for value in values_here:
            text = str(value).strip()
            # Short values (codes like "CT", "1") cannot be told apart from legitimate ones.
            if len(text) >= 6 and not text.replace(".", "").isdigit():
                values.add(text)
    return values


def test_real_files_are_anonymized_or_quarantined_with_reasons(real_run):
    _, _, report = real_run
    by_name = {Path(o.private_source).name: o for o in report.files}
    assert by_name["CT_small.dcm"].status == "anonymized"
    assert by_name["liver_1frame.dcm"].status == "anonymized"
    assert by_name["MR_small_RLE.dcm"].status == "anonymized" or "duplicate" in by_name["MR_small_RLE.dcm"].reason
    assert "burned-in text" in by_name["examples_palette.dcm"].reason
    assert "burned-in text" in by_name["JPEG2000.dcm"].reason
    assert by_name["MR_truncated.dcm"].reason.startswith("truncated")
    assert by_name["rtplan.dcm"].reason.startswith("not an image")
    assert all(o.reason for o in report.quarantined)
    assert sum(o.kind == "dicom" for o in report.anonymized) >= 8


@pytest.mark.filterwarnings("ignore:Invalid value for VR UI")  # pydicom, reading an original
def test_no_identifying_value_of_a_real_file_survives(real_run):
    src, out, report = real_run
    leaks = []
    for outcome in report.anonymized:
        original = pydicom.dcmread(src / outcome.private_source, force=True)
        data = (out / outcome.output).read_bytes()
        result = pydicom.dcmread(out / outcome.output)
        # A removed value may also be part of a kept one (InstitutionName "TOSHIBA" and
        # Manufacturer "TOSHIBA_MEC"): that occurrence is not a leak.
        table = actions_by_tag()
        kept_text = " ".join(
            str(e.value) for e in result.iterall()
            if e.VR not in ("SQ", "OB", "OW", "UN", "PN") and not e.tag.is_private
            and table.get(int(e.tag)) in (None, "K")
        )
        for value in identifying_values(original):
            if value.encode("latin-1", "ignore") in data and value not in kept_text:
                leaks.append((outcome.private_source, value))
    assert leaks == [], leaks


def test_real_files_keep_pixels_geometry_and_transfer_syntax(real_run):
    src, out, report = real_run
    for outcome in report.anonymized:
        original = pydicom.dcmread(src / outcome.private_source, force=True)
        result = pydicom.dcmread(out / outcome.output)
        if "PixelData" in original:
            assert result.PixelData == original.PixelData or result.pixel_array.tobytes() == original.pixel_array.tobytes()
        for keyword in ("Rows", "Columns", "BitsAllocated", "PixelSpacing", "ImageOrientationPatient",
                        "ImagePositionPatient", "NumberOfFrames", "SharedFunctionalGroupsSequence"):
            if keyword == "SharedFunctionalGroupsSequence" and keyword in original:
                pixel_measures = original[keyword][0].get("PixelMeasuresSequence")
                if pixel_measures:
                    assert result[keyword][0].PixelMeasuresSequence[0].PixelSpacing == pixel_measures[0].PixelSpacing
                continue
            assert result.get(keyword) == original.get(keyword), (outcome.private_source, keyword)
        original_syntax = original.file_meta.get("TransferSyntaxUID")
        if original_syntax:
            assert result.file_meta.TransferSyntaxUID == original_syntax


def test_overlays_and_the_strict_profile_options_are_applied(real_run):
    src, out, report = real_run
    outcome = next(o for o in report.files if o.private_source.endswith("examples_overlay.dcm"))
    result = pydicom.dcmread(out / outcome.output)
    assert 0x60003000 not in result
    assert "PatientSex" in result and result.PatientSex == ""  # Z without the option
    assert "PatientAge" not in result
    assert not any(element.tag.is_private for element in result)
    assert [item.CodeValue for item in result.DeidentificationMethodCodeSequence] == ["113100"]
    assert result.LongitudinalTemporalInformationModified == "REMOVED"


def test_per_frame_functional_groups_of_a_real_enhanced_image_are_walked(real_run):
    src, out, report = real_run
    outcome = next(o for o in report.files if o.private_source.endswith("liver_1frame.dcm"))
    original = pydicom.dcmread(src / outcome.private_source)
    result = pydicom.dcmread(out / outcome.output)
    assert "PerFrameFunctionalGroupsSequence" in result
    original_uids = {e.value for e in original.iterall() if e.VR == "UI"}
    result_uids = {e.value for e in result.iterall() if e.VR == "UI"}
    instance_uids = {uid for uid in original_uids if not uid.startswith("1.2.840.10008.")}
    assert instance_uids and not (instance_uids & result_uids)
