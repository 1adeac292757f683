"""Outputs stay valid DICOM: dciodvfy (Debian's dicom3tools) finds no error the input lacked.

Every pydicom test file that is an image is anonymized alone (both profiles) and checked
with dciodvfy, the validator of the DICOM editor's own toolkit; error lines are compared as
sets, so only errors the anonymizer introduced count. Files that Mica quarantines for
burned-in text are checked too, from a copy flagged BurnedInAnnotation NO. Pixels must be
identical, decoded, wherever nothing was burned in.
"""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

import anonymizer

pytestmark = pytest.mark.skipif(shutil.which("dciodvfy") is None,
                                reason="dciodvfy missing: scripts/services.sh installs dicom3tools")

IMAGE_FILES = [
    "CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "MR_small_expb.dcm",
    "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm", "MR_small_padded.dcm",
    "693_J2KI.dcm", "liver_1frame.dcm", "liver_expb_1frame.dcm", "rtdose.dcm", "rtdose_1frame.dcm",
    "examples_overlay.dcm", "JPEG2000.dcm", "JPGExtended.dcm", "SC_rgb_rle.dcm", "SC_rgb_jpeg_dcmtk.dcm",
    "examples_jpeg2k.dcm", "examples_palette.dcm", "examples_rgb_color.dcm", "image_dfl.dcm",
]


def dciodvfy_errors(path) -> set[str]:
    completed = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return {line for line in (completed.stdout + completed.stderr).splitlines() if line.startswith("Error")}


@pytest.mark.parametrize("profile", ["basic", "strict"])
def test_outputs_of_pydicoms_test_files_gain_no_dciodvfy_error_and_keep_their_pixels(tmp_path, profile):
    new_errors, checked = {}, 0
    for name in IMAGE_FILES:
        src = tmp_path / "src" / name
        src.mkdir(parents=True)
        dataset = pydicom.dcmread(get_testdata_file(name))
        if "BurnedInAnnotation" not in dataset:
            dataset.BurnedInAnnotation = "NO"  # burned-in handling is tested elsewhere
        dataset.save_as(src / name)
        # OCR off: examples_jpeg2k.dcm is an ultrasound with a hospital's name in its pixels
        # (test_burned_in checks OCR quarantines it); validity is what is tested here.
        report = anonymizer.anonymize_tree(src, tmp_path / "out" / name, key=bytes(32), profile=profile, ocr=False)
        (outcome,) = report.files
        assert outcome.status == "anonymized", (name, outcome.reason)
        output = tmp_path / "out" / name / outcome.output
        added = dciodvfy_errors(output) - dciodvfy_errors(src / name)
        if added:
            new_errors[name] = sorted(added)
        original, result = pydicom.dcmread(src / name), pydicom.dcmread(output)
        assert result.file_meta.TransferSyntaxUID == original.file_meta.TransferSyntaxUID, name
        # Byte for byte, or decoded the same where APPn/COM segments were stripped from frames.
        assert result.PixelData == original.PixelData or np.array_equal(result.pixel_array, original.pixel_array), name
        checked += 1
    assert new_errors == {}
    assert checked == len(IMAGE_FILES)
