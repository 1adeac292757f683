"""Burned-in text: risky images are cleaned by a matching rule or quarantined; OCR, on by
default where Tesseract is installed, reads what the flag and the rules leave."""

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
    plain = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "plain", key=bytes(32), ocr=False)
    assert plain.files[0].status == "anonymized"
    checked = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "ocr", key=bytes(32))
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


def _burn(pixels: np.ndarray, text: str, *, at: tuple[int, int], anchor: str, value: int, size: int = 14) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("L", (pixels.shape[1], pixels.shape[0]), 0)
    ImageDraw.Draw(canvas).text(at, text, fill=255, font=ImageFont.load_default(size=size), anchor=anchor)
    pixels = pixels.copy()
    pixels[np.asarray(canvas) > 127] = value
    return pixels


def _audit_cases(folder):
    """The five images issue 18's audit found passing with text in their pixels, by default."""
    from PIL import Image

    folder.mkdir(parents=True)
    # 1. A CT series without the flag: text on its slices (read on the first slice of the series).
    ct_paths = synthetic.write_ct_series(folder / "ct", n_slices=2, size=512, plant_phi=False)
    for path in ct_paths:
        dataset = pydicom.dcmread(path)
        dataset.PixelData = _burn(dataset.pixel_array, "NIGHTINGALE F  MRN 3141592", at=(500, 500),
                                  anchor="rb", value=556).tobytes()
        dataset.save_as(path)
    # 2. A mammogram without the flag, the name along its top border.
    mammo = synthetic.write_radiograph(folder / "mg.dcm")
    dataset = pydicom.dcmread(mammo)
    dataset.Modality = "MG"
    del dataset.BurnedInAnnotation
    top = 2 ** dataset.BitsStored - 1  # annotations are written at full white
    dataset.PixelData = _burn(dataset.pixel_array, "SMITH ANNA 1956-11-03", at=(dataset.Columns // 2, 8),
                              anchor="mt", value=top, size=18).tobytes()
    dataset.save_as(mammo)
    # 3. An ultrasound flagged NO, with its banner (no rule for this model).
    us = synthetic.write_ultrasound(folder / "us-no.dcm", burned_in_text="NIGHTINGALE FLORENCE 1956", model="OTHER 7")
    dataset = pydicom.dcmread(us)
    dataset.BurnedInAnnotation = "NO"
    dataset.save_as(us)
    # 4. A PNG with the name in a corner.
    pixels = _burn(np.full((400, 500), 30, dtype=np.uint8), "DOE JOHN  ID 4455012", at=(10, 10), anchor="lt", value=220)
    Image.fromarray(pixels).save(folder / "photo.png")
    # 5. An ultrasound whose rule blanks the top banner, with text below it.
    outside = synthetic.write_ultrasound(folder / "us-rule.dcm")
    dataset = pydicom.dcmread(outside)
    dataset.PixelData = _burn(dataset.pixel_array, "Dr HOUSE  ACC 88012", at=(630, 470), anchor="rb",
                              value=255).tobytes()
    dataset.save_as(outside)
    return folder


@pytest.mark.skipif(not burned_in.tesseract_available(), reason="Tesseract is not installed")
def test_the_five_images_the_audit_found_with_text_are_quarantined_by_default(tmp_path):
    src = _audit_cases(tmp_path / "src")
    report = anonymizer.anonymize_tree(src, tmp_path / "out", key=bytes(32))  # OCR on by default
    outcomes = {o.private_source: o for o in report.files}
    assert {name: o.status for name, o in outcomes.items()} == {name: "quarantined" for name in outcomes}
    for name in ("mg.dcm", "us-no.dcm", "photo.png", "us-rule.dcm"):
        assert outcomes[name].reason.startswith("burned-in text: OCR read"), name
    assert not any(path.is_file() for path in (tmp_path / "out").rglob("*"))


@pytest.mark.skipif(not burned_in.tesseract_available(), reason="Tesseract is not installed")
def test_clean_images_pass_and_a_clean_ct_series_is_read_once(tmp_path):
    synthetic.write_ct_series(tmp_path / "src" / "ct", n_slices=3, size=512, plant_phi=False)
    synthetic.write_ultrasound(tmp_path / "src" / "us.dcm")  # its banner blanked by the built-in rule
    mammo = pydicom.dcmread(synthetic.write_radiograph(tmp_path / "src" / "mg.dcm"))
    mammo.Modality = "MG"
    del mammo.BurnedInAnnotation
    mammo.save_as(tmp_path / "src" / "mg.dcm")
    report = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "out", key=bytes(32))
    assert [(o.private_source, o.reason) for o in report.quarantined] == []
    assert report.action_counts["pixels read by OCR"] == 3  # one CT slice, the ultrasound, the mammogram


def test_the_ocr_scope_follows_the_modality_and_the_flag():
    from pydicom.dataset import Dataset

    def image(modality, flag=None):
        dataset = Dataset()
        dataset.Modality = modality
        if flag:
            dataset.BurnedInAnnotation = flag
        return dataset

    assert burned_in.ocr_scope(image("US", "NO")) == "image"  # the flag is not trusted here
    assert burned_in.ocr_scope(image("MG")) == "image" and burned_in.ocr_scope(image("MG", "NO")) is None
    assert burned_in.ocr_scope(image("CT")) == "series" and burned_in.ocr_scope(image("CT", "NO")) is None
    assert burned_in.ocr_scope(image("CT", "YES")) == "image"


def test_without_tesseract_ocr_is_off_by_default_and_required_when_asked(tmp_path, monkeypatch):
    monkeypatch.setattr(burned_in, "tesseract_available", lambda: False)
    (tmp_path / "src").mkdir()
    with pytest.raises(ValueError, match="needs Tesseract"):
        anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "out", key=bytes(32), ocr=True)
    synthetic.write_ct_series(tmp_path / "src", n_slices=1, size=16)
    report = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "out", key=bytes(32))
    assert report.anonymized and "pixels read by OCR" not in report.action_counts


@pytest.mark.skipif(not burned_in.tesseract_available(), reason="Tesseract is not installed")
def test_a_real_ultrasound_flagged_no_with_a_hospital_name_in_its_pixels_is_quarantined(tmp_path):
    from pydicom.data import get_testdata_file

    # pydicom's examples_jpeg2k.dcm: a GE ultrasound (JPEG 2000, YBR_RCT) whose banner names
    # the hospital; flagged NO it passed before OCR was on by default.
    dataset = pydicom.dcmread(get_testdata_file("examples_jpeg2k.dcm"))
    dataset.BurnedInAnnotation = "NO"
    (tmp_path / "src").mkdir()
    dataset.save_as(tmp_path / "src" / "us.dcm")
    report = anonymizer.anonymize_tree(tmp_path / "src", tmp_path / "out", key=bytes(32))
    assert report.files[0].reason.startswith("burned-in text: OCR read")
