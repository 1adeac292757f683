"""render_preview: 8-bit previews with rescale, windowing and MONOCHROME1 inversion."""

from __future__ import annotations

import numpy as np
from PIL import Image
from pydicom.data import get_testdata_file

import anonymizer
from anonymizer import synthetic


def test_ct_preview_uses_rescale_and_the_first_window(tmp_path):
    (path,) = synthetic.write_ct_series(tmp_path, n_slices=1, size=64, plant_phi=False)
    image = anonymizer.render_preview(path)
    assert image.mode == "L" and image.size == (64, 64)
    pixels = np.asarray(image)
    # Lung window -600/1500: air (-1000 HU) is dark but not clipped to zero, soft tissue bright.
    assert pixels[0, 0] < 60
    assert pixels[32, 32] > 150


def test_monochrome1_is_inverted(tmp_path):
    mono2 = synthetic.write_radiograph(tmp_path / "m2.dcm", rows=64, columns=64, plant_phi=False)
    mono1 = synthetic.write_radiograph(tmp_path / "m1.dcm", rows=64, columns=64, plant_phi=False,
                                       photometric="MONOCHROME1")
    first, second = np.asarray(anonymizer.render_preview(mono2)), np.asarray(anonymizer.render_preview(mono1))
    assert abs(int(first[32, 20]) - int(second[32, 20])) <= 2  # same look after inversion


def test_preview_is_limited_to_max_size_and_handles_colour_and_multiframe():
    colour = anonymizer.render_preview(get_testdata_file("SC_rgb_rle_2frame.dcm"), max_size=50)
    assert colour.mode == "RGB" and max(colour.size) <= 50
    palette = anonymizer.render_preview(get_testdata_file("examples_palette.dcm"))
    assert palette.mode == "RGB"


def test_preview_of_png(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray((np.arange(100, dtype=np.uint16).reshape(10, 10) * 600)).save(path)
    image = anonymizer.render_preview(path)
    assert image.mode == "L" and np.asarray(image).max() == 255
