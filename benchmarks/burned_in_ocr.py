"""Burned-in text: recall and false-positive rate of Mica's OCR check on a labelled synthetic set.

    .venv/bin/python benchmarks/burned_in_ocr.py             # 40 images with text, 40 without
    .venv/bin/python benchmarks/burned_in_ocr.py --per-class 10 --baseline

The set imitates what modalities burn in: names, IDs, dates and hospital names in the corners
and along the borders, and a few over the anatomy, of CT slices (lung and soft-tissue windows),
ultrasound fans, mammograms and radiographs, in fonts of 9 to 20 px and grey levels from 110 to
255, bright on dark and, for a few, dark on a bright label; the images without text are the
same backgrounds. Every image is
the 8-bit preview Mica checks. An image counts as flagged when Tesseract reads at least one
word (3+ letters or digits, confidence 60+). Figures, overall and per kind, after
`prepare_for_ocr` (top-hat, specks dropped, cropped, binarised, enlarged: what Mica runs by
default) and, with --baseline, for the image as given (the check before issue 18), with the
seconds per image. Needs Tesseract (Debian tesseract-ocr).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from anonymizer import burned_in  # noqa: E402
from anonymizer.synthetic import _phantom  # noqa: E402

NAMES = ["DOE^JOHN", "NIGHTINGALE F", "MULLER JOSE", "SMITH, ANNA", "O'BRIEN P", "NGUYEN VAN AN", "GARCIA M"]
LINES = [
    "{name}", "ID 4455{n:03d}", "DOB 1956-11-03", "2023-01-{d:02d} 14:{n:02d}", "ST MARY HOSPITAL",
    "ACC 88{n:04d}", "{name}  MRN 31{n:05d}", "Dr HOUSE",
]


def background(kind: str, rng: np.random.Generator) -> np.ndarray:
    if kind == "ct-lung":
        hu = _phantom(512, int(rng.integers(0, 8)), 8).astype(np.float64) - 1024
        return np.clip((hu + 1350) / 1500 * 255, 0, 255).astype(np.uint8)
    if kind == "ct-soft":
        hu = _phantom(512, int(rng.integers(0, 8)), 8).astype(np.float64) - 1024
        return np.clip((hu + 160) / 400 * 255, 0, 255).astype(np.uint8)
    canvas = Image.new("L", (640, 480) if kind == "us" else (600, 800), 0)
    draw = ImageDraw.Draw(canvas)
    if kind == "us":
        draw.pieslice([64, -190, 576, 456], 60, 120, fill=90)
    elif kind == "mammo":
        draw.ellipse([-300, 80, 420, 720], fill=150)
    else:  # radiograph
        draw.rectangle([40, 60, 560, 760], fill=170)
        draw.ellipse([110, 160, 270, 620], fill=60)
        draw.ellipse([330, 160, 490, 620], fill=60)
    pixels = np.asarray(canvas, dtype=np.float64) + rng.normal(0, 12, size=(canvas.height, canvas.width))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def with_text(pixels: np.ndarray, rng: np.random.Generator) -> Image.Image:
    image = Image.fromarray(pixels)
    draw = ImageDraw.Draw(image)
    height, width = pixels.shape
    corners = [(8, 8), (width - 8, 8), (8, height - 8), (width - 8, height - 8), (width // 2, 8), (width // 2, height - 8),
               (width // 2, height // 2), (width // 4, height // 2)]  # the last two over the anatomy
    for _ in range(int(rng.integers(1, 4))):
        x, y = corners[int(rng.integers(0, len(corners)))]
        size = int(rng.integers(9, 21))
        font = ImageFont.load_default(size=size)
        text = LINES[int(rng.integers(0, len(LINES)))].format(
            name=NAMES[int(rng.integers(0, len(NAMES)))], n=int(rng.integers(0, 60)), d=int(rng.integers(1, 29)))
        anchor = ("l" if x < width // 3 else "r" if x > 2 * width // 3 else "m") + ("t" if y < height // 2 else "b")
        dark_on_bright = rng.random() < 0.15
        if dark_on_bright:
            box = draw.textbbox((x, y), text, font=font, anchor=anchor)
            draw.rectangle([box[0] - 3, box[1] - 3, box[2] + 3, box[3] + 3], fill=235)
        draw.text((x, y), text, fill=20 if dark_on_bright else int(rng.integers(110, 256)), font=font, anchor=anchor)
    return image


KINDS = ["ct-lung", "ct-soft", "us", "mammo", "radiograph"]


def labelled_set(per_class: int, seed: int = 18) -> list[tuple[str, Image.Image, bool]]:
    rng = np.random.default_rng(seed)
    images = []
    for index in range(per_class):
        kind = KINDS[index % len(KINDS)]
        images.append((kind, with_text(background(kind, rng), rng), True))
        images.append((kind, Image.fromarray(background(kind, rng)), False))
    return images


def evaluate(images, prepare: bool) -> dict:
    """Recall and false-positive rate, overall and per kind of background, and the time."""
    flagged = {}  # (kind, has_text) -> [flagged or not]
    started = time.perf_counter()
    for kind, image, has_text in images:
        flagged.setdefault((kind, has_text), []).append(bool(burned_in.ocr_words(image, prepare=prepare)))
    seconds = time.perf_counter() - started

    def rate(kinds, has_text):
        found = [hit for kind in kinds for hit in flagged.get((kind, has_text), [])]
        return sum(found) / len(found) if found else float("nan")

    return {
        "recall": rate(KINDS, True),
        "false_positive_rate": rate(KINDS, False),
        "per_kind": {kind: (rate([kind], True), rate([kind], False)) for kind in KINDS},
        "seconds_per_image": seconds / len(images),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-class", type=int, default=40, help="images with text, and as many without")
    parser.add_argument("--baseline", action="store_true", help="also read the images as given (before issue 18)")
    arguments = parser.parse_args()
    if not burned_in.tesseract_available():
        sys.exit("Tesseract is not installed (Debian package tesseract-ocr)")
    images = labelled_set(arguments.per_class)
    print(f"{len(images)} images ({arguments.per_class} with text); {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f} at start")
    runs = ([("image as given", False)] if arguments.baseline else []) + [("prepare_for_ocr", True)]
    for label, prepare in runs:
        result = evaluate(images, prepare)
        print(f"{label}: recall {result['recall']:.2f}, false-positive rate {result['false_positive_rate']:.2f}, "
              f"{result['seconds_per_image']:.2f} s/image")
        for kind, (recall, false_positives) in result["per_kind"].items():
            print(f"  {kind:12} recall {recall:.2f}  false-positive rate {false_positives:.2f}")
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
