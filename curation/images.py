"""DICOM ↔ PNG for downloads, as the RSNA challenges offered both.

``dicom_to_png`` renders a stored (anonymized) DICOM image as a reader would first see it: the
modality LUT (rescale slope and intercept), then the file's own VOI LUT or window, or else the
image's full range; MONOCHROME1 is inverted so that bright is dense in every PNG; images stored
with more than 8 bits become 16-bit PNGs so no grey level is lost. ``png_to_dicom`` wraps a PNG
as a Secondary Capture DICOM (valid for dciodvfy) under the pseudonymous identifiers it is given.
"""

from __future__ import annotations

import datetime
import io
import uuid
from pathlib import Path

import numpy as np
import pydicom
from PIL import Image
from pydicom.dataset import FileMetaDataset
from pydicom.pixels import apply_modality_lut
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

__all__ = ["dicom_to_png", "png_to_dicom"]

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
# zlib level 1: on a 2048² 16-bit radiograph 0.7 s and 5.8 MB against 3.3 s and 5.7 MB at PIL's
# default 6 (the sensor noise in the low bits does not compress), see benchmarks/curation.py.
PNG_COMPRESSION = 1


def _read(source):
    if isinstance(source, (bytes, bytearray)):
        source = io.BytesIO(source)
    try:
        return pydicom.dcmread(source)
    except Exception as error:  # pydicom raises several kinds for a file that is not DICOM
        raise ValueError(f"{_name(source)}: not a readable DICOM file ({type(error).__name__})") from error


def _name(source):
    return Path(source).name if isinstance(source, (str, Path)) else "the DICOM file"


def dicom_to_png(source, *, frame: int = 1) -> bytes:
    """The PNG of one frame (from 1) of a DICOM image: a path, a binary file or bytes.

    Greyscale: the modality LUT, then the first VOI LUT of the file if it has one, else its first
    window (linear, linear exact or sigmoid, as VOILUTFunction says), else the full range of the
    frame's values, scaled to 0–255 (8-bit PNG) when the image stores at most 8 bits, else to
    0–65535 (16-bit PNG); MONOCHROME1 inverted. Colour images (RGB, YBR) become 8-bit RGB PNGs.
    ValueError names the file and what is wrong (not DICOM, no pixels, no such frame).
    """
    dataset = _read(source)
    where = _name(source)
    if "PixelData" not in dataset:
        raise ValueError(f"{where}: the file has no pixel data")
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if not 1 <= frame <= frames:
        raise ValueError(f"{where}: frame {frame} does not exist (the image has {frames})")
    try:
        pixels = dataset.pixel_array
    except Exception as error:
        raise ValueError(f"{where}: the pixel data cannot be decoded ({type(error).__name__})") from error
    if frames > 1:
        pixels = pixels[frame - 1]
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    buffer = io.BytesIO()
    if int(dataset.get("SamplesPerPixel", 1)) == 3:  # pydicom gives YBR as RGB
        Image.fromarray(_to_8_bits(pixels)).save(buffer, format="PNG", compress_level=PNG_COMPRESSION)
        return buffer.getvalue()
    shown = _greyscale_unit(dataset, pixels)
    if photometric == "MONOCHROME1":
        shown = 1.0 - shown
    if int(dataset.get("BitsStored", 8)) > 8:
        Image.fromarray(np.round(shown * 65535).astype(np.uint16)).save(buffer, format="PNG", compress_level=PNG_COMPRESSION)
    else:
        Image.fromarray(np.round(shown * 255).astype(np.uint8)).save(buffer, format="PNG", compress_level=PNG_COMPRESSION)
    return buffer.getvalue()


def _greyscale_unit(dataset, pixels) -> np.ndarray:
    """The frame's display values in [0, 1]."""
    values = apply_modality_lut(pixels, dataset).astype(np.float64)
    if "VOILUTSequence" in dataset:
        # PS3.3 C.11.2.1.1: values below the first mapped one take the LUT's first entry, above its last.
        item = dataset.VOILUTSequence[0]
        entries, first_mapped, bits = (int(value) for value in item.LUTDescriptor)
        data = item.LUTData
        data = np.frombuffer(data, dtype="<u2") if isinstance(data, bytes) else np.asarray(data)  # OW or US
        table = data.astype(np.float64).ravel()[: entries or 65536]
        index = np.clip(np.floor(values) - first_mapped, 0, len(table) - 1).astype(np.int64)
        return np.clip(table[index] / (2**bits - 1), 0, 1)
    if "WindowCenter" in dataset and "WindowWidth" in dataset:
        center, width = (_first(dataset.WindowCenter), _first(dataset.WindowWidth))
        function = str(dataset.get("VOILUTFunction", "LINEAR")).upper()
        if width > 0 or (function == "LINEAR_EXACT" and width > 0):
            if function == "SIGMOID":
                return 1.0 / (1.0 + np.exp(-4.0 * (values - center) / width))
            if function == "LINEAR_EXACT":
                return np.clip((values - (center - width / 2)) / width, 0, 1)
            if width >= 1:  # PS3.3 C.11.2.1.2.1: linear, the window's width at least 1
                return np.clip((values - (center - 0.5)) / (width - 1) + 0.5, 0, 1) if width > 1 else (
                    (values > center - 0.5).astype(np.float64))
    low, high = float(values.min()), float(values.max())
    return (values - low) / (high - low) if high > low else np.zeros_like(values)


def _first(value):
    return float(value[0]) if isinstance(value, pydicom.multival.MultiValue) else float(value)


def _to_8_bits(pixels):
    if pixels.dtype == np.uint8:
        return pixels
    high = float(pixels.max()) or 1.0
    return np.round(pixels.astype(np.float64) / high * 255).astype(np.uint8)


def png_to_dicom(png, *, patient_id: str, study_uid: str | None = None, series_uid: str | None = None,
                 sop_instance_uid: str | None = None, modality: str = "OT", series_number: int = 1,
                 instance_number: int = 1) -> bytes:
    """A Secondary Capture DICOM (Part 10 bytes, explicit VR little endian) holding a PNG's pixels.

    ``png``: a path, a binary file or bytes; 8- or 16-bit grey (MONOCHROME2) or RGB (alpha and
    palettes are flattened to RGB). The patient is ``patient_id`` (a pseudonym: nothing else about
    the patient is written), the UIDs are the given ones or new ``2.25.`` UIDs. ValueError names
    what is wrong (not a PNG, an image mode it cannot hold).
    """
    if isinstance(png, (bytes, bytearray)):
        png = io.BytesIO(png)
    try:
        image = Image.open(png)
        image.load()
    except Exception as error:
        raise ValueError(f"{_name(png)}: not a readable PNG image ({type(error).__name__})") from error
    if image.format != "PNG":
        raise ValueError(f"{_name(png)}: not a PNG image ({image.format})")
    if image.mode in ("I;16", "I;16B", "I"):
        pixels = np.asarray(image)
        if pixels.min() < 0 or pixels.max() > 65535:
            raise ValueError(f"{_name(png)}: grey values outside 0–65535")
        pixels, bits, samples = pixels.astype(np.uint16), 16, 1
    elif image.mode in ("L", "1"):
        pixels, bits, samples = np.asarray(image.convert("L")), 8, 1
    else:
        pixels, bits, samples = np.asarray(image.convert("RGB")), 8, 3

    now = datetime.datetime.now(datetime.timezone.utc)
    sop_instance_uid = sop_instance_uid or _new_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    meta.MediaStorageSOPInstanceUID = sop_instance_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = generate_uid(prefix="1.2.826.0.1.3680043.8.498.")  # pydicom's root
    dataset = pydicom.Dataset()
    dataset.file_meta = meta
    dataset.SpecificCharacterSet = "ISO_IR 192"
    dataset.SOPClassUID = SECONDARY_CAPTURE
    dataset.SOPInstanceUID = sop_instance_uid
    # Patient, study and series: the pseudonym only; the type-2 attributes stay empty.
    dataset.PatientName = patient_id
    dataset.PatientID = patient_id
    dataset.PatientBirthDate = ""
    dataset.PatientSex = ""
    # The pixels come from an upload Mica anonymized (PS3.15 E.1.1 asks to say so).
    dataset.PatientIdentityRemoved = "YES"
    dataset.DeidentificationMethod = "Mica anonymizer"
    dataset.StudyInstanceUID = study_uid or _new_uid()
    dataset.StudyDate = ""
    dataset.StudyTime = ""
    dataset.ReferringPhysicianName = ""
    dataset.StudyID = ""
    dataset.AccessionNumber = ""
    dataset.Modality = modality
    dataset.SeriesInstanceUID = series_uid or _new_uid()
    dataset.SeriesNumber = series_number
    dataset.Laterality = ""
    dataset.InstanceNumber = instance_number
    dataset.PatientOrientation = ""
    dataset.ConversionType = "WSD"  # workstation: the image was made from a PNG
    dataset.ContentDate = now.strftime("%Y%m%d")
    dataset.ContentTime = now.strftime("%H%M%S")
    dataset.SamplesPerPixel = samples
    dataset.PhotometricInterpretation = "RGB" if samples == 3 else "MONOCHROME2"
    if samples == 3:
        dataset.PlanarConfiguration = 0
    dataset.Rows, dataset.Columns = pixels.shape[:2]
    dataset.BitsAllocated = bits
    dataset.BitsStored = bits
    dataset.HighBit = bits - 1
    dataset.PixelRepresentation = 0
    # The window that shows the stored values as they are, so that dicom_to_png gives the PNG back.
    dataset.WindowCenter = 2 ** (bits - 1)
    dataset.WindowWidth = 2**bits
    dataset.PixelData = np.ascontiguousarray(pixels).astype("<u2" if bits == 16 else np.uint8).tobytes()
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def _new_uid() -> str:
    return f"2.25.{uuid.uuid4().int}"
