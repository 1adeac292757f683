"""DICOM → PNG and PNG → DICOM (curation.images).

Bad inputs tried: bytes that are not DICOM, a DICOM without pixel data, a frame past the last,
bytes that are not an image, a JPEG given as PNG.
"""

import io
import shutil
import subprocess

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.pixels import apply_voi_lut

import anonymizer.synthetic
from curation.images import dicom_to_png, png_to_dicom


def png_of(array):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def pixels_of(png):
    image = Image.open(io.BytesIO(png))
    return image.mode, np.asarray(image)


@pytest.fixture
def ct_slice(tmp_path):
    """A 12-bit CT slice with a rescale (HU = stored − 2048) and a lung window."""
    path = anonymizer.synthetic.write_ct_series(tmp_path, n_slices=1, size=32)[0]
    dataset = pydicom.dcmread(path)
    stored = np.linspace(0, 4095, 32 * 32).reshape(32, 32).astype(np.uint16)
    dataset.BitsAllocated, dataset.BitsStored, dataset.HighBit, dataset.PixelRepresentation = 16, 12, 11, 0
    dataset.PixelData = stored.tobytes()
    dataset.RescaleSlope, dataset.RescaleIntercept = 1, -2048
    dataset.WindowCenter, dataset.WindowWidth = -600, 1500
    dataset.save_as(path)
    return path, stored


def test_a_window_is_applied_to_the_rescaled_values_into_a_16_bit_png(ct_slice):
    path, stored = ct_slice
    mode, shown = pixels_of(dicom_to_png(path))
    assert mode == "I;16" and shown.dtype == np.uint16
    hounsfield = stored.astype(float) - 2048
    # PS3.3 C.11.2.1.2.1, by hand: below c − 0.5 − (w − 1)/2 black, above c − 0.5 + (w − 1)/2 white.
    expected = np.clip((hounsfield - (-600 - 0.5)) / (1500 - 1) + 0.5, 0, 1)
    assert np.abs(shown / 65535 - expected).max() < 1e-4
    assert shown[hounsfield < -1350].max() == 0 and shown[hounsfield > 150].min() == 65535
    # pydicom's own windowing agrees (its output spans the 12-bit range here)
    dataset = pydicom.dcmread(path)
    reference = apply_voi_lut(hounsfield, dataset)
    reference = (reference - reference.min()) / (reference.max() - reference.min())
    assert np.abs(shown / 65535 - reference).max() < 1e-3


def test_without_a_window_the_full_range_is_shown_and_monochrome1_is_inverted(tmp_path):
    pictures = {}
    for photometric in ("MONOCHROME2", "MONOCHROME1"):
        path = anonymizer.synthetic.write_radiograph(tmp_path / f"{photometric}.dcm", rows=40, columns=30,
                                                     photometric=photometric, seed=3)
        dataset = pydicom.dcmread(path)
        for keyword in ("WindowCenter", "WindowWidth", "VOILUTSequence"):
            if keyword in dataset:
                delattr(dataset, keyword)
        dataset.save_as(path)
        mode, shown = pixels_of(dicom_to_png(path))
        values = dataset.pixel_array.astype(float)
        unit = (values - values.min()) / (values.max() - values.min())
        bits = int(dataset.BitsStored)
        assert mode == ("I;16" if bits > 8 else "L")
        top = 65535 if bits > 8 else 255
        expected = (1 - unit) if photometric == "MONOCHROME1" else unit
        assert np.abs(shown / top - expected).max() <= 1 / top
        pictures[photometric] = shown / top
    # Both show the phantom the same way round: dense is bright.
    assert np.corrcoef(pictures["MONOCHROME1"].ravel(), pictures["MONOCHROME2"].ravel())[0, 1] > 0.8


def test_a_voi_lut_sequence_is_preferred_to_the_window(ct_slice):
    path, stored = ct_slice
    dataset = pydicom.dcmread(path)
    lut = pydicom.Dataset()
    dataset.RescaleIntercept = 0
    lut.LUTDescriptor = [4096, 0, 8]  # 4096 entries from 0, 8-bit output
    lut.add_new("LUTData", "US", (np.arange(4096) // 16).astype(np.uint16).tolist())
    dataset.VOILUTSequence = [lut]
    dataset.save_as(path)
    _, shown = pixels_of(dicom_to_png(path))
    assert np.abs(shown / 65535 - (stored // 16) / 255).max() < 1e-4


def test_frames_of_a_multiframe_image(tmp_path):
    path = anonymizer.synthetic.write_ct_series(tmp_path, n_slices=1, size=16)[0]
    dataset = pydicom.dcmread(path)
    ramp = np.arange(256, dtype=np.int16).reshape(16, 16)
    frames = np.stack([np.roll(ramp, 5 * index, axis=1) for index in range(3)])
    dataset.NumberOfFrames = 3
    dataset.BitsStored, dataset.HighBit = 12, 11
    dataset.PixelData = frames.tobytes()
    for keyword in ("WindowCenter", "WindowWidth", "RescaleSlope", "RescaleIntercept"):
        if keyword in dataset:
            delattr(dataset, keyword)
    dataset.save_as(path)
    for frame in (1, 2, 3):
        _, shown = pixels_of(dicom_to_png(path, frame=frame))
        assert np.array_equal(shown, np.round(frames[frame - 1] / 255 * 65535).astype(np.uint16))
    with pytest.raises(ValueError, match="frame 4 does not exist"):
        dicom_to_png(path, frame=4)


@pytest.mark.parametrize("array", [
    np.arange(256, dtype=np.uint8).reshape(16, 16),
    (np.arange(300, dtype=np.uint16) * 211).reshape(15, 20),
    np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8),
], ids=["8-bit grey", "16-bit grey", "RGB"])
def test_a_png_becomes_a_valid_secondary_capture_and_back(tmp_path, array):
    data = png_to_dicom(png_of(array), patient_id="MICA-0A1B2C3D4E5F", study_uid="2.25.1", instance_number=3)
    dataset = pydicom.dcmread(io.BytesIO(data))
    assert dataset.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7" and dataset.ConversionType == "WSD"
    assert dataset.PatientID == "MICA-0A1B2C3D4E5F" and dataset.StudyInstanceUID == "2.25.1"
    assert dataset.PatientIdentityRemoved == "YES" and "BurnedInAnnotation" not in dataset
    assert dataset.SOPInstanceUID.startswith("2.25.") and dataset.InstanceNumber == 3
    assert np.array_equal(dataset.pixel_array, array)
    _, back = pixels_of(dicom_to_png(data))
    assert np.array_equal(back, array)
    if shutil.which("dciodvfy"):
        path = tmp_path / "sc.dcm"
        path.write_bytes(data)
        completed = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
        errors = [line for line in (completed.stdout + completed.stderr).splitlines() if line.startswith("Error")]
        assert errors == []


def test_bad_inputs_are_named(tmp_path):
    with pytest.raises(ValueError, match="not a readable DICOM file"):
        dicom_to_png(b"not dicom at all")
    no_pixels = tmp_path / "header.dcm"
    dataset = pydicom.dcmread(anonymizer.synthetic.write_ct_series(tmp_path, n_slices=1, size=8)[0])
    del dataset.PixelData
    dataset.save_as(no_pixels)
    with pytest.raises(ValueError, match="header.dcm: the file has no pixel data"):
        dicom_to_png(no_pixels)
    with pytest.raises(ValueError, match="not a readable PNG image"):
        png_to_dicom(b"\x89PNG but not", patient_id="MICA-1")
    jpeg = io.BytesIO()
    Image.new("L", (4, 4)).save(jpeg, format="JPEG")
    with pytest.raises(ValueError, match=r"not a PNG image \(JPEG\)"):
        png_to_dicom(jpeg.getvalue(), patient_id="MICA-1")
