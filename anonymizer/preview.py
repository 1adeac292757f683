"""8-bit previews of anonymized images, with the windowing a radiologist would see."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from PIL import Image

from .images import JPEG_SIGNATURE, PNG_SIGNATURE


def render_preview(path, max_size: int = 512) -> Image.Image:
    """Return an 8-bit preview of a DICOM file (first frame) or a PNG/JPEG, at most max_size.

    DICOM: Rescale Slope/Intercept, then the first Window Center/Width (or the min/max when
    there is no window), MONOCHROME1 inverted, colour shown as RGB.
    """
    path = Path(path)
    with path.open("rb") as handle:
        head = handle.read(8)
    if head.startswith(PNG_SIGNATURE) or head.startswith(JPEG_SIGNATURE):
        with Image.open(path) as image:
            image.load()
            return _to_8bit_pil(image, max_size)
    dataset = pydicom.dcmread(path, force=True)
    return dataset_preview(dataset, max_size=max_size)


def _to_8bit_pil(image: Image.Image, max_size: int) -> Image.Image:
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(_scale_to_8bit(pixels, pixels.min(), pixels.max()))
    elif image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    image.thumbnail((max_size, max_size))
    return image


def _scale_to_8bit(pixels: np.ndarray, low: float, high: float) -> np.ndarray:
    if high <= low:
        return np.zeros(pixels.shape, dtype=np.uint8)
    scaled = (pixels - low) / (high - low) * 255.0
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _first(value):
    if isinstance(value, (list, tuple, pydicom.multival.MultiValue)):
        return value[0] if len(value) else None
    return value


def dataset_preview(dataset, max_size: int = 512) -> Image.Image:
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    pixels = dataset.pixel_array
    if frames > 1:
        pixels = pixels[0]
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if samples == 3 or photometric == "PALETTE COLOR":
        if photometric == "PALETTE COLOR":
            pixels = pydicom.pixels.apply_color_lut(pixels, dataset)
        if pixels.dtype != np.uint8:
            pixels = _scale_to_8bit(pixels.astype(np.float64), float(pixels.min()), float(pixels.max()))
        image = Image.fromarray(np.ascontiguousarray(pixels))  # (rows, columns, 3) uint8: RGB
    else:
        values = pixels.astype(np.float64)
        slope = float(dataset.get("RescaleSlope", 1) or 1)
        intercept = float(dataset.get("RescaleIntercept", 0) or 0)
        values = values * slope + intercept
        center = _first(dataset.get("WindowCenter"))
        width = _first(dataset.get("WindowWidth"))
        if center is not None and width is not None and float(width) > 0:
            low = float(center) - float(width) / 2
            high = float(center) + float(width) / 2
        else:
            low, high = float(values.min()), float(values.max())
        eight_bit = _scale_to_8bit(values, low, high)
        if photometric == "MONOCHROME1":
            eight_bit = 255 - eight_bit
        image = Image.fromarray(eight_bit)  # 2-D uint8: mode L
    image.thumbnail((max_size, max_size))
    return image
