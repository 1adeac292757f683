"""Shared fixtures: a PHI corpus planted everywhere, built once per test session."""

from __future__ import annotations

import numpy as np
import pytest

import anonymizer
from anonymizer import synthetic
from .helpers import (
    ASCII_NAME,
    JPEG_COMMENT,
    JPEG_EXIF_ARTIST,
    LATIN1_NAME,
    PNG_TEXT,
    UTF8_NAME,
    jpeg_with_metadata,
    png_with_metadata,
)


@pytest.fixture(scope="session")
def key() -> bytes:
    return bytes(range(32))


@pytest.fixture(scope="session")
def phi_corpus(tmp_path_factory) -> dict:
    """A folder of inputs with PHI planted everywhere, and the list of planted strings."""
    root = tmp_path_factory.mktemp("phi") / "src"
    patient_folder = root / "NIGHTINGALE_FLORENCE_PID-000001" / "CT 2021-03-14"
    ct_paths = synthetic.write_ct_series(patient_folder, n_slices=4, size=64, per_frame_groups=True)
    latin1_paths = synthetic.write_ct_series(
        root / "latin1", n_slices=2, size=32, patient_name=LATIN1_NAME, patient_id="PID-LATIN1",
        charset="ISO_IR 100",
    )
    utf8_paths = synthetic.write_ct_series(
        root / "utf8", n_slices=2, size=32, patient_name=UTF8_NAME, patient_id="PID-UTF8",
        charset="ISO_IR 192",
    )
    radiograph = synthetic.write_radiograph(root / "xray" / "chest_Nightingale.dcm", rows=128, columns=96,
                                            photometric="MONOCHROME1")
    ultrasound = synthetic.write_ultrasound(root / "us" / "us_Nightingale.dcm")
    gray = (np.arange(48 * 40, dtype=np.uint32).reshape(40, 48) * 29 % 65536).astype(np.uint16)
    (root / "pictures").mkdir()
    (root / "pictures" / "Nightingale_xray16.png").write_bytes(png_with_metadata(gray))
    rgb = np.random.default_rng(1).integers(0, 255, size=(32, 40, 3), dtype=np.uint8)
    (root / "pictures" / "Nightingale_photo.png").write_bytes(png_with_metadata(rgb))
    (root / "pictures" / "Nightingale_scan.jpg").write_bytes(jpeg_with_metadata(rgb))

    planted = synthetic.planted_values(ASCII_NAME, "PID-000001")
    planted.update({
        "latin1 name": LATIN1_NAME,
        "utf8 name": UTF8_NAME,
        "latin1 id": "PID-LATIN1",
        "utf8 id": "PID-UTF8",
        "name part": "NIGHTINGALE",
        "name part mixed case": "Nightingale",
        "latin1 name part": "MÜLLER",
        "utf8 name part": "ŻÓŁKIEWSKI",
        "file name date": "2021-03-14",
        "source AE title": "PPTH_PACS",
        "png text": PNG_TEXT,
        "jpeg comment": JPEG_COMMENT.decode(),
        "exif artist": JPEG_EXIF_ARTIST,
        "xmp": "XMP Nightingale",
        "zoidberg": "Zoidberg",
        "house": "HOUSE",
    })
    return {
        "root": root,
        "planted": planted,
        "ct": ct_paths,
        "latin1": latin1_paths,
        "utf8": utf8_paths,
        "radiograph": radiograph,
        "ultrasound": ultrasound,
    }


@pytest.fixture(scope="session")
def phi_run(phi_corpus, key, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("phi-out") / "out"
    report = anonymizer.anonymize_tree(phi_corpus["root"], out, key=key, keep_uid_map=True)
    return {"out": out, "report": report}


