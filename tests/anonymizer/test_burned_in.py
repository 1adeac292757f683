"""Burned-in text: risky images are cleaned by a matching rule or quarantined; OCR is optional."""

from __future__ import annotations

import json

import numpy as np
import pydicom
import pytest

import anonymizer
from anonymizer import burned_in, synthetic


def test_an_ultrasound_without_a_matching_rule_is_quarantined(tmp_path):
    synthetic.write_ultrasound(tmp_path / "src" / "us.dcm", manufacturer="ACME", model="Sono 9")
    report = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "out", key=bytes(32))
    (outcome,) = report.files
    assert outcome.status == "quarantined"
    assert outcome.reason == (
        "burned-in text: modality US commonly carries burned-in text and BurnedInAnnotation is not NO, "
        "and no cleaning rule matches (modality 'US', manufacturer 'ACME', model 'Sono 9', 640x480 pixels); "
        "review and add a rule"
    )
    assert not any((tmp_path / "out").rglob("*.dcm"))


def test_an_organizer_rule_file_cleans_a_new_device(tmp_path):
    synthetic.write_ultrasound(tmp_path / "src" / "us.dcm", manufacturer="ACME", model="Sono 9")
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{
        "name": "ACME Sono 9 header", "modality": "US", "manufacturer": "acme", "model": "SONO 9",
        "rows": 480, "columns": 640, "rectangles": [[0, 0, 640, 50]],
    }]}))
    report = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "out", key=bytes(32), burned_in_rules=rules)
    (outcome,) = report.files
    assert outcome.status == "anonymized"
    assert pydicom.dcmread(tmp_path / "out" / outcome.output).pixel_array[:50].max() == 0


def test_a_flag_yes_on_any_modality_needs_a_rule_and_a_flag_no_trusts_the_device(tmp_path):
    (path,) = synthetic.write_ct_series(tmp_path / "src", n_slices=1, size=16)
    dataset = pydicom.dcmread(path)
    dataset.BurnedInAnnotation = "YES"
    dataset.save_as(path)
    report = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "out", key=bytes(32))
    assert report.files[0].reason.startswith("burned-in text: BurnedInAnnotation is YES")
    us = pydicom.dcmread(synthetic.write_ultrasound(tmp_path / "src2" / "us.dcm", model="OTHER"))
    us.BurnedInAnnotation = "NO"
    assert burned_in.burned_in_risk(us) is None


def test_an_invalid_rules_file_is_a_fatal_error(tmp_path):
    (tmp_path / "src").mkdir()
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"modality": "US"}]}))
    with pytest.raises(ValueError, match="rule 0 is invalid"):
        anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "out", key=bytes(32), burned_in_rules=rules)


def test_blanking_covers_every_frame_and_clips_to_the_image():
    pixels = np.ones((3, 10, 12), dtype=np.uint16)
    burned_in.blank_rectangles(pixels, [(8, 0, 100, 2)], rows=10, columns=12, frames=3, samples=1)
    assert pixels[:, :2, 8:].max() == 0 and pixels[:, 2:, :].min() == 1 and pixels[:, :2, :8].min() == 1


@pytest.mark.skipif(not burned_in.tesseract_available(), reason="Tesseract is not installed")
def test_ocr_flags_text_that_no_rule_covers(tmp_path):
    # A CT slice that says NO, with text drawn into its pixels anyway.
    synthetic.write_ultrasound(tmp_path / "src" / "us.dcm", burned_in_text="NIGHTINGALE FLORENCE 1956")
    dataset = pydicom.dcmread(tmp_path / "src" / "us.dcm")
    dataset.Modality = "OT"
    dataset.BurnedInAnnotation = "NO"
    dataset.save_as(tmp_path / "src" / "us.dcm")
    plain = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "plain", key=bytes(32))
    assert plain.files[0].status == "anonymized"
    checked = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "ocr", key=bytes(32), ocr=True)
    assert checked.files[0].status == "quarantined"
    assert "OCR read" in checked.files[0].reason


@pytest.mark.skipif(not burned_in.tesseract_available(), reason="Tesseract is not installed")
def test_ocr_flags_small_grey_text_in_the_corner_of_a_ct_without_the_flag(tmp_path):
    # Issue 18: a CT without BurnedInAnnotation passed with its text; OCR must catch it.
    from PIL import Image, ImageDraw, ImageFont

    (path,) = synthetic.write_ct_series(tmp_path / "src", n_slices=1, size=512, plant_phi=False)
    dataset = pydicom.dcmread(path)
    pixels = dataset.pixel_array.copy()
    # Stored value 556 is grey 150 in the lung window (-600/1500) the preview uses.
    canvas = Image.new("L", (512, 512), 0)
    ImageDraw.Draw(canvas).text((500, 500), "NIGHTINGALE F  MRN 3141592", fill=255,
                                font=ImageFont.load_default(size=13), anchor="rb")
    pixels[np.asarray(canvas) > 127] = 556
    dataset.PixelData = pixels.tobytes()
    dataset.save_as(path)
    report = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "out", key=bytes(32), ocr=True)
    assert report.files[0].status == "quarantined"
    assert report.files[0].reason.startswith("burned-in text: OCR read")
