"""The keep list: identifiers planted where a removal list lets them through, on real files.

The corpus (tests/anonymizer/corpus.py) plants identifiers in every place issue 18 names on
pydicom's own test files, in every encoding they come in (explicit and implicit VR, big
endian, deflated, RLE, JPEG-LS, JPEG 2000), and every output byte is searched for them.
"""

from __future__ import annotations

import datetime

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file

import anonymizer
from anonymizer.dicom import patient_identity
from anonymizer.keep_list import HOWS, keep_list
from anonymizer.keys import date_shift_days
from anonymizer.profile import actions_by_tag

from .corpus import UNLISTED_DATES, find_leaks, plant_identifiers, plant_in_frames, searchable_bytes
from .helpers import PNG_TEXT, encodings_of, png_with_metadata

CORPUS_FILES = [
    "CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
    "MR_small_RLE.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm",
    "JPEGLSNearLossless_16.dcm", "693_J2KI.dcm", "image_dfl.dcm", "liver_1frame.dcm", "rtdose.dcm",
    "examples_overlay.dcm",
]


@pytest.fixture(scope="module", params=["basic", "strict"])
def planted_run(request, tmp_path_factory):
    src = tmp_path_factory.mktemp("planted") / "src"
    src.mkdir()
    planted = {}
    for index, name in enumerate(CORPUS_FILES):
        dataset = pydicom.dcmread(get_testdata_file(name))
        planted.update(plant_identifiers(dataset))
        planted.update(plant_in_frames(dataset))
        dataset.SOPInstanceUID = f"1.2.826.0.1.3680043.10.543.77.{index}"  # several files share one
        dataset.save_as(src / f"{index}_{name}")
    # A PNG with text in tEXt, zTXt (deflated), iTXt and eXIf chunks: searched inflated.
    (src / "99_photo.png").write_bytes(png_with_metadata(np.arange(64 * 48, dtype=np.uint16).reshape(48, 64)))
    planted["PNG text chunks"] = PNG_TEXT
    out = tmp_path_factory.mktemp("planted-out") / "out"
    report = anonymizer.anonymize_tree(src, out, key=bytes(32), profile=request.param)
    return src, out, report, planted


def test_every_planted_file_is_anonymized(planted_run):
    src, out, report, planted = planted_run
    assert [(o.private_source, o.reason) for o in report.quarantined] == []
    assert len(report.anonymized) == len(CORPUS_FILES) + 1


def test_the_planted_values_are_in_the_inputs(planted_run):
    # Guards the leak test: a value never written could never be found leaking.
    src, out, report, planted = planted_run
    blobs = [blob for path in src.iterdir() for blob in searchable_bytes(path)]
    missing = [label for label, value in planted.items()
               if not any(encoded in blob for blob in blobs for encoded in encodings_of(value))]
    assert missing == []


def test_no_planted_value_survives_in_any_output_byte(planted_run):
    src, out, report, planted = planted_run
    assert find_leaks(out, planted) == []


def test_what_the_list_keeps_survives_and_is_checked(planted_run):
    src, out, report, planted = planted_run
    by_name = {o.private_source.split("_", 1)[1]: o for o in report.anonymized if o.kind == "dicom"}
    result = pydicom.dcmread(out / by_name["CT_small.dcm"].output)
    original = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    for keyword in ("Modality", "KVP", "SliceThickness", "ImageType", "RescaleSlope", "Manufacturer",
                    "ConvolutionKernel", "PatientPosition"):
        assert result.get(keyword) == original.get(keyword), keyword
    item = result.SourceImageSequence[0].DerivationCodeSequence[0]
    assert "TextValue" not in item
    assert item.ConceptNameCodeSequence[0].CodeMeaning == "Basic Application Confidentiality Profile"
    assert item.PurposeOfReferenceCodeSequence[0].CodeMeaning == "ANONYMIZED"
    assert result.AnatomicRegionSequence[0].CodeMeaning == "Chest"  # clean words stay
    assert not any((int(element.tag) >> 16) & 0xFF00 == 0x6000 for element in result)
    assert 0x7F020010 not in result
    kept_private = [e.value for e in result if e.tag.is_private and e.tag.element >= 0x1000]
    # the number and the code word that match their slots; never the text in numeric slots
    assert kept_private == (["DIRECTIONAL", 0.5] if report.profile == "basic" else [])
    # Dates the table does not list are shifted by the patient's offset in both profiles
    # (ModifiedImageDate is retired: removed).
    sent = pydicom.dcmread(src / by_name["CT_small.dcm"].private_source)  # with its planted issuer
    shift = datetime.timedelta(days=date_shift_days(bytes(32), patient_identity(sent)))
    for tag, (vr, value) in UNLISTED_DATES.items():
        if tag == 0x00203403:
            assert tag not in result
            continue
        moved = (datetime.datetime.strptime(value[:8], "%Y%m%d") - shift).strftime("%Y%m%d") + value[8:]
        assert result[tag].value == moved, hex(tag)
    assert result.LongitudinalTemporalInformationModified == "MODIFIED"
    # In an implicit-VR file every private value reads as UN: decoded and checked, the number
    # and the code word stay, the text goes.
    implicit = pydicom.dcmread(out / by_name["MR_small_implicit.dcm"].output)
    kept_raw = [e.value for e in implicit if e.tag.is_private and e.tag.element >= 0x1000]
    assert kept_raw == (["DIRECTIONAL", 0.5] if report.profile == "basic" else [])


def test_the_keep_list_is_consistent_with_pydicoms_dictionary_and_the_table():
    from pydicom.datadict import DicomDictionary

    table = actions_by_tag()
    for tag, how in keep_list().items():
        vr, _, _, retired, keyword = DicomDictionary[tag]
        assert how in HOWS and not retired, keyword
        assert table.get(tag) in (None, "K", "C"), keyword  # the table decides its own rows
        if vr in ("LO", "SH", "ST", "LT", "UT", "UC", "PN", "AE", "UR"):
            assert how in ("device", "label", "code", "meaning", "empty"), keyword  # text only by name
