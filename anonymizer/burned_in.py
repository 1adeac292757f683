"""Burned-in text: which images may carry it, the rules that blank it, the OCR that reads it.

An image is at risk when it says so (BurnedInAnnotation YES), or when its modality or kind
commonly carries text in the pixels and it does not say NO. Risky modalities, from PS3.15
E.3.1 ("Clean Pixel Data") and PS3.3 C.7.6.1.1.7 on Burned In Annotation, and from what
archives show in practice: ultrasound (US, IVUS), secondary capture and screenshots (SC, OT,
DOC, and ImageType SCREEN SAVE), angiography and fluoroscopy (XA, RF), endoscopy and
photography (ES, XC, GM, OP, SM labels, DG dermoscopy), and the waveform-like captures (ECG,
HD). An image at risk is cleaned by the first matching rule, or quarantined for review.
OCR, on by default where Tesseract is installed, then reads what ocr_scope says, flag or not.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydicom.multival import MultiValue

from .elements import peek_value

DEFAULT_RULES_PATH = Path(__file__).with_name("burned_in_rules.json")

RISKY_MODALITIES = {
    "US", "IVUS", "SC", "OT", "DOC", "XA", "RF", "ES", "XC", "GM", "OP", "SM", "DG", "ECG", "HD",
}
SECONDARY_CAPTURE_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit SC
    "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte SC
    "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word SC
    "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color SC
}


@dataclass(frozen=True)
class BurnedInRule:
    name: str
    modality: str
    manufacturer: str
    model: str
    rows: int
    columns: int
    rectangles: tuple[tuple[int, int, int, int], ...]

    def matches(self, modality: str, manufacturer: str, model: str, rows: int, columns: int) -> bool:
        return (
            self.modality.upper() == modality.strip().upper()
            and self.manufacturer.strip().upper() == manufacturer.strip().upper()
            and self.model.strip().upper() == model.strip().upper()
            and self.rows == rows
            and self.columns == columns
        )


def load_rules(path) -> tuple[BurnedInRule, ...]:
    """Read a rules file; raises ValueError naming the file and the faulty rule."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"burned-in rules file {path} cannot be read: {error}") from None
    rules = []
    for index, raw in enumerate(document.get("rules", [])):
        try:
            rectangles = tuple(tuple(int(v) for v in rectangle) for rectangle in raw["rectangles"])
            if any(len(rectangle) != 4 for rectangle in rectangles):
                raise ValueError("each rectangle is [x, y, width, height]")
            rules.append(
                BurnedInRule(
                    name=str(raw.get("name", f"rule {index}")),
                    modality=str(raw["modality"]),
                    manufacturer=str(raw["manufacturer"]),
                    model=str(raw["model"]),
                    rows=int(raw["rows"]),
                    columns=int(raw["columns"]),
                    rectangles=rectangles,
                )
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"burned-in rules file {path}: rule {index} is invalid: {error}") from None
    return tuple(rules)


@lru_cache(maxsize=8)
def rules_for(extra_rules_path: str | None) -> tuple[BurnedInRule, ...]:
    """The built-in rules followed by the organizer's (the organizer's are tried first)."""
    builtin = load_rules(DEFAULT_RULES_PATH)
    if extra_rules_path is None:
        return builtin
    return load_rules(extra_rules_path) + builtin


def _text(dataset, tag: int) -> str:
    return str(peek_value(dataset, tag) or "").strip()


TAG_BURNED_IN_ANNOTATION = 0x00280301
TAG_MODALITY = 0x00080060
TAG_SOP_CLASS_UID = 0x00080016
TAG_IMAGE_TYPE = 0x00080008


def burned_in_risk(dataset) -> str | None:
    """Return why this image needs a cleaning rule (or is quarantined), or None.

    BurnedInAnnotation YES, or a kind that commonly carries text (see _commonly_carries_text)
    unless the flag is NO. OCR, when on, reads these images after the rule too (ocr_scope).
    """
    flag = _text(dataset, TAG_BURNED_IN_ANNOTATION).upper()
    if flag == "YES":
        return "BurnedInAnnotation is YES"
    if flag == "NO":
        return None
    return _commonly_carries_text(dataset)


def _commonly_carries_text(dataset) -> str | None:
    modality = _text(dataset, TAG_MODALITY).upper()
    if modality in RISKY_MODALITIES:
        return f"modality {modality} commonly carries burned-in text and BurnedInAnnotation is not NO"
    if _text(dataset, TAG_SOP_CLASS_UID) in SECONDARY_CAPTURE_SOP_CLASSES:
        return "Secondary Capture images commonly carry burned-in text and BurnedInAnnotation is not NO"
    image_type = peek_value(dataset, TAG_IMAGE_TYPE)
    if not image_type:
        values = []
    else:
        values = list(image_type) if isinstance(image_type, (MultiValue, list, tuple)) else [image_type]
    if "SCREEN SAVE" in [str(value).strip().upper() for value in values]:
        return "ImageType SCREEN SAVE commonly carries burned-in text"
    return None



# Projection radiographs carry laterality markers, labels and at times the patient's name:
# every image is read by OCR unless the device says NO.
PROJECTION_MODALITIES = {"CR", "DX", "MG", "IO", "PX", "RG"}

OCR_EVERY_IMAGE = "image"
OCR_FIRST_OF_SERIES = "series"


def ocr_scope(dataset) -> str | None:
    """How the OCR check reads this image, when OCR is on.

    "image": every image is read, whatever BurnedInAnnotation says, for the modalities and
    kinds that commonly carry text (the audit of issue 18 found a name in an ultrasound
    flagged NO); also images flagged YES, and projection radiographs unless flagged NO.
    "series": images of other modalities without the flag (CT, MR, PT, NM...: the flag is
    Type 3 and usually absent) are read one per series, the first the run meets, and every
    image of a series where text was found; the rest of a clean series is not read (a text
    that appears on later images only is missed: reading every slice costs 0.6 s each).
    None: flagged NO on a modality that rarely burns text in.
    """
    flag = _text(dataset, TAG_BURNED_IN_ANNOTATION).upper()
    if flag == "YES" or _commonly_carries_text(dataset):
        return OCR_EVERY_IMAGE
    if flag == "NO":
        return None
    if _text(dataset, TAG_MODALITY).upper() in PROJECTION_MODALITIES:
        return OCR_EVERY_IMAGE
    return OCR_FIRST_OF_SERIES


class OcrCheck:
    """What the OCR check of one run has read: the series already sampled, and those where
    text was found (read image by image from then on). One per run and process."""

    def __init__(self):
        self.series_read: set[str] = set()
        self.series_with_text: set[str] = set()

    def wanted(self, scope: str | None, series_uid: str) -> bool:
        if scope is None:
            return False
        if scope == OCR_EVERY_IMAGE:
            return True
        return series_uid not in self.series_read or series_uid in self.series_with_text

    def record(self, series_uid: str, found_text: bool) -> None:
        self.series_read.add(series_uid)
        if found_text:
            self.series_with_text.add(series_uid)


@lru_cache(maxsize=4)  # a long-lived worker keeps the last few runs' checks, not every one
def ocr_check_for(run_token: str) -> OcrCheck:
    return OcrCheck()


def find_rule(dataset, rules) -> BurnedInRule | None:
    modality = str(dataset.get("Modality", "") or "")
    manufacturer = str(dataset.get("Manufacturer", "") or "")
    model = str(dataset.get("ManufacturerModelName", "") or "")
    rows = int(dataset.get("Rows", 0) or 0)
    columns = int(dataset.get("Columns", 0) or 0)
    for rule in rules:
        if rule.matches(modality, manufacturer, model, rows, columns):
            return rule
    return None


# A reason may name a device so an organizer can write a rule for it, but only a value that
# looks like a device name; anything else could be a sender's free text, so it is not shown.
DEVICE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9 ._-]{0,39}")


def _shown(value) -> str:
    text = str(value or "").strip()
    return repr(text) if DEVICE_NAME.fullmatch(text) and not text.isdigit() else "(not shown)"


def _dimension(dataset, tag: int) -> str:
    value = peek_value(dataset, tag)
    return str(value) if isinstance(value, int) else "?"


def describe_image(dataset) -> str:
    return (
        f"modality {_shown(peek_value(dataset, TAG_MODALITY))}, manufacturer "
        f"{_shown(peek_value(dataset, 0x00080070))}, model {_shown(peek_value(dataset, 0x00081090))}, "
        f"{_dimension(dataset, 0x00280011)}x{_dimension(dataset, 0x00280010)} pixels"
    )


def blank_rectangles(pixels, rectangles, *, rows: int, columns: int, frames: int, samples: int):
    """Set the rectangles to 0 in every frame of `pixels` (numpy, as pydicom returns it)."""
    for x, y, width, height in rectangles:
        x0, y0 = max(0, x), max(0, y)
        x1, y1 = min(columns, x + width), min(rows, y + height)
        if x1 <= x0 or y1 <= y0:
            continue
        if frames > 1:
            pixels[:, y0:y1, x0:x1, ...] = 0
        else:
            pixels[y0:y1, x0:x1, ...] = 0
    return pixels


# --- Optional OCR ------------------------------------------------------------------------------

def tesseract_available() -> bool:
    return shutil.which("tesseract") is not None


# Annotation strokes are a few pixels wide: a top-hat of this size keeps them and drops the
# anatomy (bone, fat, the ultrasound fan), which is wider.
TEXT_STROKE_WINDOW = 9
TEXT_CONTRAST = 48  # grey levels a stroke stands out from its surroundings by, at least
MIN_OCR_SIDE = 1200  # smaller images are enlarged: Tesseract reads glyphs of 20-30 px best


# A glyph's strokes join into components of several pixels; what is smaller is noise.
MIN_STROKE_PIXELS = 5
CROP_MARGIN = 16  # pixels kept around the strokes found
LETTER_GAP = 9  # strokes this close side by side belong to one line of text
LINE_MIN_GLYPHS = 3  # a word counts from three letters or digits
MIN_TEXT_CHARACTERS = 5  # letters and digits, all words together, for an image to hold text


def white_tophat(gray, window: int):
    """The white top-hat of an 8-bit image over a square window of odd size: exactly
    scipy.ndimage.white_tophat(gray, size=(window, window)) (its 'reflect' border), in a
    tenth of the time.

    scipy filters each row with a general one-dimensional loop; here a window's minimum (then
    maximum) comes from whole-image minima of shifted views, doubling the span each time, so
    a 9-pixel window costs four vectorised passes per axis.
    """
    import numpy as np
    from scipy import ndimage

    if window % 2 == 0 or min(gray.shape) < window:
        return ndimage.white_tophat(gray, size=(window, window))  # borders it alone defines
    opened = _flat_filter(_flat_filter(gray, window, np.minimum), window, np.maximum)
    return gray - opened  # never below: the opening lies under the image


def _flat_filter(values, window: int, combine):
    """`combine` (np.minimum or np.maximum) over a centred square window, with scipy's
    'reflect' border (numpy's 'symmetric' padding), one axis at a time."""
    import numpy as np

    half = window // 2
    for axis in (0, 1):
        padded = np.pad(values, [(half, half) if a == axis else (0, 0) for a in (0, 1)], mode="symmetric")
        length = values.shape[axis]

        def span(start, size, array):
            return array[start:start + size] if axis == 0 else array[:, start:start + size]

        combined, covered = padded, 1  # combined[i] covers padded[i : i + covered]
        while covered * 2 <= window:
            size = combined.shape[axis] - covered
            combined = combine(span(0, size, combined), span(covered, size, combined))
            covered *= 2
        if covered < window:  # the rest of the window from a shifted copy of what is covered
            rest = window - covered
            combined = combine(span(0, length, combined), span(rest, length, combined))
        values = span(0, length, combined)
    return values


def prepare_for_ocr(image):
    """The image as Tesseract reads annotations best: black strokes on white, enlarged;
    None when nothing in it looks like a stroke (Tesseract is then not run at all).

    Burned-in text is thin and brighter than what is around it (annotations are written at
    or near full white): a white top-hat keeps exactly that and flattens the anatomy, so
    Tesseract is not misled by it into reading nothing or noise. Specks smaller than a
    glyph's stroke go, so do strokes without two neighbours in line, and the image is
    cropped to what is left (plus a margin): a clean slice costs a few milliseconds, and
    Tesseract reads a corner, not a whole enlarged image. Dark text on a bright label is not kept (a black top-hat would also keep the
    gaps between bright strokes and fill the letters in): benchmarks/burned_in_ocr.py
    counts it among the misses.
    """
    import numpy as np
    from PIL import Image
    from scipy import ndimage

    # 8 bits are enough: the top-hat is the image less its opening, never below it.
    gray = np.asarray(image.convert("L"), dtype=np.uint8)
    strokes = white_tophat(gray, TEXT_STROKE_WINDOW) >= TEXT_CONTRAST
    # What follows looks at the strokes only: on a clean image a few specks, so it works on
    # the rectangle that holds them (with room for the filters below), not the whole image.
    found_rows, found_columns = np.nonzero(strokes)
    if found_rows.size == 0:
        return None
    # The line-joining filter below reaches one row and half a letter gap.
    top_found, bottom_found, left_found, right_found = _box(found_rows, found_columns, (1, LETTER_GAP // 2),
                                                            gray.shape)
    strokes = strokes[top_found:bottom_found, left_found:right_found]
    labels, count = ndimage.label(strokes, structure=np.ones((3, 3), dtype=bool))
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    kept = sizes >= MIN_STROKE_PIXELS
    if np.count_nonzero(kept) < LINE_MIN_GLYPHS:
        return None  # no line can hold enough glyphs
    strokes = kept[labels]
    # A line of text is glyphs side by side: strokes joined across letter and word gaps form
    # clusters; only a cluster of LINE_MIN_GLYPHS strokes or more is kept (isolated edges of
    # the anatomy are not).
    lines, line_count = ndimage.label(ndimage.maximum_filter(strokes.view(np.uint8), size=(3, LETTER_GAP)))
    # The first pixel of each glyph (in label order), found among the stroke pixels only: a
    # few hundred to sort rather than the whole image.
    stroke_pixels = np.flatnonzero(strokes)
    _, first = np.unique(labels.ravel()[stroke_pixels], return_index=True)
    line_of_glyph = lines.ravel()[stroke_pixels[first]]  # a glyph lies in one line
    glyphs_per_line = np.bincount(line_of_glyph, minlength=line_count + 1)
    strokes &= (glyphs_per_line >= LINE_MIN_GLYPHS)[lines]
    rows, columns = np.nonzero(strokes)
    if rows.size == 0:
        return None
    rows, columns = rows + top_found, columns + left_found
    strokes_in_image = np.zeros(gray.shape, dtype=bool)
    strokes_in_image[rows, columns] = True
    top, bottom, left, right = _box(rows, columns, (CROP_MARGIN, CROP_MARGIN), gray.shape)
    prepared = Image.fromarray(np.where(strokes_in_image[top:bottom, left:right], 0, 255).astype(np.uint8))
    # Enlarged by the factor that brings the whole image to MIN_OCR_SIDE: glyphs get the same
    # size whatever the crop.
    scale = MIN_OCR_SIDE / max(1, min(gray.shape))
    if scale > 1:
        prepared = prepared.resize((round(prepared.width * scale), round(prepared.height * scale)),
                                   Image.Resampling.LANCZOS)
    return prepared


def _box(rows, columns, margins, shape):
    """(top, bottom, left, right): the rectangle holding these pixels, `margins` (rows,
    columns) wider on each side, within an image of `shape`; bottom and right exclusive."""
    return (max(0, rows.min() - margins[0]), min(shape[0], rows.max() + margins[0] + 1),
            max(0, columns.min() - margins[1]), min(shape[1], columns.max() + margins[1] + 1))


def ocr_words(image, *, min_confidence: float = 60.0, prepare: bool = True) -> list[str]:
    """Words Tesseract reads in a PIL image (8-bit), or [] when Tesseract is not installed.

    Tesseract runs as a subprocess (no Python binding needed) on the image made ready by
    `prepare_for_ocr` (`prepare=False`: as given); a word counts when it has at least three
    letters or digits and Tesseract's confidence is at least `min_confidence`, and the words
    count when they hold MIN_TEXT_CHARACTERS letters and digits or more together.
    """
    if not tesseract_available():
        return []
    if prepare:
        image = prepare_for_ocr(image)
        if image is None:
            return []
    with tempfile.TemporaryDirectory(prefix="mica-ocr-") as folder:
        image_path = Path(folder) / "image.png"
        image.save(image_path)
        completed = subprocess.run(
            # The prepared image is black on white: Tesseract's second, inverted pass over
            # every line would double its time for nothing.
            ["tesseract", str(image_path), "stdout", "--psm", "11",
             *(["-c", "tessedit_do_invert=0"] if prepare else []), "tsv"],
            capture_output=True,
            text=True,
            timeout=120,
            # One thread: workers already read files in parallel, and Tesseract's OpenMP
            # threads only contend with them (and with each other) for the same cores.
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},
        )
    words = []
    for line in completed.stdout.splitlines()[1:]:
        fields = line.split("\t")
        if len(fields) < 12:
            continue
        try:
            confidence = float(fields[10])
        except ValueError:
            continue
        text = fields[11].strip()
        if confidence >= min_confidence and sum(ch.isalnum() for ch in text) >= 3:
            words.append(text)
    # One short word alone is what anatomy read as glyphs looks like ("aot" in pydicom's
    # examples_overlay.dcm, an MR slice); an annotation has more to it.
    if sum(ch.isalnum() for word in words for ch in word) < MIN_TEXT_CHARACTERS:
        return []
    return words
