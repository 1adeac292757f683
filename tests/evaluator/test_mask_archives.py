"""Segmentation masks in a participant's .zip: read in place, checked before they are decoded.

Bad inputs tried here: duplicate base names, '..' and absolute paths, a symbolic link, an
encrypted-flag entry, a text file, more entries than the truth's cases allow, more bytes than
the truth's masks need, a bad CRC-32, size headers that lie both ways, a file that is not a
.zip, a 13000² PNG in a 164 KB zip, a 500³ NIfTI against a 16³ truth, a 30000² PNG truth,
an RGB PNG inside a zip, a float mask with fractions.
"""

import io
import json
import os
import shutil
import stat
import struct
import tracemalloc
import zipfile
import zlib

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

import evaluator
from evaluator import SubmissionInvalid, masks as M

from .test_segmentation import blobs, save_nii


def png_bytes(array=None, *, size=None, color_type=0, encoded_rows=None):
    """A PNG of ``array`` (uint8), or of zeros of ``size`` (height, width) written row by row,
    so that a huge image costs the test no memory; ``encoded_rows`` cuts the pixel data short
    (for checks that must stop at the header)."""
    out = io.BytesIO()
    out.write(b"\x89PNG\r\n\x1a\n")

    def chunk(kind, data):
        out.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)))

    h, w = array.shape if array is not None else size
    channels = {0: 1, 2: 3}[color_type]
    chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, color_type, 0, 0, 0))
    z = zlib.compressobj(9)
    parts = []
    for i in range(h if encoded_rows is None else encoded_rows):
        row = array[i].astype(np.uint8).tobytes() if array is not None else bytes(w * channels)
        parts.append(z.compress(b"\x00" + row))
    parts.append(z.flush())
    chunk(b"IDAT", b"".join(parts))
    chunk(b"IEND", b"")
    return out.getvalue()


def nifti_gz_zeros(shape, dtype=np.uint8):
    """A gzipped NIfTI-1 file of zeros, streamed through zlib (a 500³ volume costs no memory)."""
    header = nib.Nifti1Header()
    header.set_data_shape(shape)
    header.set_data_dtype(dtype)
    header["vox_offset"] = 352
    z = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [z.compress(header.binaryblock + b"\x00" * 4)]
    remaining = int(np.prod(shape)) * np.dtype(dtype).itemsize
    block = bytes(1 << 20)
    while remaining:
        n = min(remaining, len(block))
        parts.append(z.compress(block[:n]))
        remaining -= n
    parts.append(z.flush())
    return b"".join(parts)


def make_zip(path, entries, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


@pytest.fixture
def png_truth(tmp_path):
    """A 2-case truth of 16 × 20 PNG masks, as a folder and as a .zip, and its facts."""
    rng = np.random.default_rng(3)
    masks = {c: blobs(rng, (16, 20), sigma=2).astype(np.uint8) for c in ("c1", "c2")}
    folder = tmp_path / "truth"
    folder.mkdir()
    for c, m in masks.items():
        (folder / f"{c}.png").write_bytes(png_bytes(m))
    archive = make_zip(tmp_path / "truth.zip", {f"truth/{c}.png": png_bytes(m) for c, m in masks.items()})
    return masks, folder, archive, evaluator.describe_truth("segmentation", archive)


def problems_of(predictions, info, name="masks.zip"):
    with pytest.raises(SubmissionInvalid) as exc:
        evaluator.validate("segmentation", predictions, truth_info=info, name=name)
    return str(exc.value)


# ----------------------------------------------------------------------------- reading a .zip
def test_a_zip_scores_as_its_folder_does_with_entries_flattened_and_metadata_ignored(tmp_path, rng):
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    masks = {c: blobs(rng, (20, 18, 12)) for c in ("c1", "c2", "c3")}
    for c, m in masks.items():
        save_nii(truth / f"{c}.nii.gz", m)
    save_nii(pred / "c1.nii.gz", masks["c1"])
    save_nii(pred / "c2.nii.gz", np.roll(masks["c2"], 1, axis=0))
    archive = make_zip(tmp_path / "upload.zip", {
        "results/c1.nii.gz": (pred / "c1.nii.gz").read_bytes(),
        "results/deeper/c2.nii.gz": (pred / "c2.nii.gz").read_bytes(),
        "__MACOSX/results/._c1.nii.gz": b"resource fork",
        "results/.DS_Store": b"finder",
    })
    truth_zip = make_zip(tmp_path / "truth.zip", {f"{c}.nii.gz": (truth / f"{c}.nii.gz").read_bytes()
                                                  for c in masks})
    from_folder = evaluator.score("segmentation", truth, pred)
    from_zip = evaluator.score("segmentation", truth_zip, archive, name="my masks.zip")
    assert from_zip == from_folder
    assert from_zip["missing_cases"] == 1 and from_zip["metrics"]["dice"] < 1


def test_problems_name_the_display_name_and_entry_never_a_server_path(tmp_path, png_truth):
    masks, _, _, info = png_truth
    archive = make_zip(tmp_path / "4f1c-uuid.zip", {"out/c1.png": png_bytes(masks["c1"][:, :10]),
                                                    "out/c9.png": png_bytes(masks["c1"]),
                                                    "out/notes.txt": b"hi"})
    text = problems_of(archive, info, name="team_a.zip")
    assert "team_a.zip, entry 'out/c1.png', case 'c1': mask size (16, 10) differs from the truth's (16, 20)" in text
    assert "team_a.zip, entry 'out/c9.png', case 'c9': unknown case id 'c9'" in text
    assert "team_a.zip, entry 'out/notes.txt': unexpected file: masks are named <case_id>.png" in text
    assert str(tmp_path) not in text and "uuid" not in text


@pytest.mark.parametrize("entries, expected", [
    ({"a/c1.png": "good", "b/c1.png": "good"}, "entry 'b/c1.png': has the same file name as entry 'a/c1.png'"),
    ({"../c1.png": "good"}, "entry '../c1.png': has an unsafe path"),
    ({"/abs/c1.png": "good"}, "entry '/abs/c1.png': has an unsafe path"),
    ({"c1.png": "rgb"}, "entry 'c1.png', case 'c1': must be a single-channel image, found mode RGB"),
    ({"c1.png": b"not a png at all, not at all"}, "entry 'c1.png', case 'c1': is not a readable PNG image"),
    ({"c1.nii.gz": "good"}, "entry 'c1.nii.gz': unexpected file: masks are named <case_id>.png"),
])
def test_bad_entries_are_named(tmp_path, png_truth, entries, expected):
    masks, _, _, info = png_truth
    content = {"good": png_bytes(masks["c1"]), "rgb": png_bytes(size=(16, 20), color_type=2)}
    archive = make_zip(tmp_path / "p.zip", {k: content.get(v, v) for k, v in entries.items()})
    assert expected in problems_of(archive, info)


def test_two_formats_of_one_case_are_refused_in_a_participants_own_check(tmp_path):
    archive = make_zip(tmp_path / "p.zip", {"c1.png": png_bytes(np.zeros((4, 4))), "x/c1.nii.gz": b"3-D"})
    second = "entry 'x/c1.nii.gz': is a second mask of case 'c1', after entry 'c1.png'"
    with pytest.raises(SubmissionInvalid, match=second):
        evaluator.validate("segmentation", archive, case_ids=["c1"], name="p.zip")


def test_a_link_and_an_encrypted_entry_are_refused(tmp_path, png_truth):
    masks, _, _, info = png_truth
    link = zipfile.ZipInfo("c1.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    with zipfile.ZipFile(tmp_path / "p.zip", "w") as z:
        z.writestr(link, "/etc/passwd")
        z.writestr("c2.png", png_bytes(masks["c2"]))
    data = bytearray((tmp_path / "p.zip").read_bytes())
    central = data.rfind(b"PK\x01\x02")  # the second entry's directory record: mark it encrypted
    data[central + 8] |= 0x1
    (tmp_path / "p.zip").write_bytes(bytes(data))
    text = problems_of(tmp_path / "p.zip", info)
    assert "entry 'c1.png': is a link, not a file" in text
    assert "entry 'c2.png': is encrypted" in text


def test_a_bad_crc_and_lying_size_headers_are_named(tmp_path, png_truth):
    masks, _, _, info = png_truth
    good = png_bytes(masks["c1"])
    path = make_zip(tmp_path / "p.zip", {"c1.png": good}, zipfile.ZIP_STORED)
    data = path.read_bytes()
    central = data.rfind(b"PK\x01\x02")
    local = data.find(good)

    def variant(name, change):
        altered = bytearray(data)
        change(altered)
        (tmp_path / name).write_bytes(bytes(altered))
        return tmp_path / name

    def flip_a_pixel_byte(b):
        b[local + len(good) - 40] ^= 0xFF

    def size(value):
        def change(b):
            for at in (central + 20, central + 24):  # compressed and uncompressed sizes
                b[at: at + 4] = struct.pack("<I", value)
        return change

    assert "entry 'c1.png', case 'c1': is corrupt: its data fails the archive's CRC-32 check" in \
        problems_of(variant("crc.zip", flip_a_pixel_byte), info)
    assert "is corrupt" in problems_of(variant("short.zip", size(len(good) - 10)), info)
    deflated = make_zip(tmp_path / "d.zip", {"c1.png": good}).read_bytes()
    at = deflated.rfind(b"PK\x01\x02") + 24  # the uncompressed size only: the data ends before it
    (tmp_path / "long.zip").write_bytes(deflated[:at] + struct.pack("<I", len(good) + 10) + deflated[at + 4:])
    assert f"is corrupt: its size header says {len(good) + 10:,} bytes but it holds {len(good):,}" in \
        problems_of(tmp_path / "long.zip", info)


def test_not_a_zip_is_named(tmp_path, png_truth):
    (tmp_path / "p.zip").write_bytes(b"PK\x03\x04 but nothing more")
    text = problems_of(tmp_path / "p.zip", png_truth[3], "p.zip")
    assert "p.zip: is neither a folder nor a .zip archive of masks" in text


# ----------------------------------------------------------------------------- caps from the truth
def test_more_entries_than_the_truth_allows_are_refused_from_the_end_record(tmp_path, png_truth):
    info = png_truth[3]
    entries = {f"dir/x{i}.txt": b"" for i in range(2000)}
    text = problems_of(make_zip(tmp_path / "many.zip", entries), info, name="many.zip")
    assert text.endswith("many.zip: lists 2,000 entries, more than the 52 allowed")
    entries = {f"x{i}.png": b"" for i in range(19)}  # 2 cases + 16 allowed
    assert "holds 19 masks, more than the 18 allowed" in problems_of(make_zip(tmp_path / "f.zip", entries), info)


def test_more_bytes_than_the_truths_masks_need_are_refused_before_reading(tmp_path, png_truth):
    info = png_truth[3]  # two 16 × 20 uint8 masks: 4 × 640 bytes + the 16 MiB floor
    archive = make_zip(tmp_path / "bomb.zip", {"c1.png": bytes(20 << 20)})
    assert f"unpacks to {20 << 20:,} bytes, more than the {4 * 640 + (16 << 20):,} its masks need" in \
        problems_of(archive, info)


def peak_bytes_of(f):
    tracemalloc.start()
    try:
        f()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_13000_square_png_in_a_small_zip_is_refused_from_its_header(tmp_path, png_truth):
    info = png_truth[3]
    archive = make_zip(tmp_path / "huge.zip", {"c1.png": png_bytes(size=(13000, 13000))}, zipfile.ZIP_STORED)
    assert os.path.getsize(archive) < 200_000  # the 164 KB upload

    def check():
        assert "mask size (13000, 13000) differs from the truth's (16, 20)" in problems_of(archive, info)

    assert peak_bytes_of(check) < 4 << 20  # decoding it would take 169 MB (1.35 GB as int64)


def test_a_500_cube_nifti_against_a_16_cube_truth_is_refused_from_its_header(tmp_path):
    save_nii(tmp_path / "truth" / "c1.nii.gz", np.ones((16, 16, 16)))
    info = evaluator.describe_truth("segmentation", tmp_path / "truth")
    archive = make_zip(tmp_path / "huge.zip", {"c1.nii.gz": nifti_gz_zeros((500, 500, 500))}, zipfile.ZIP_STORED)
    assert os.path.getsize(archive) < 200_000  # the 122 KB upload

    def check():
        assert "mask size (500, 500, 500) differs from the truth's (16, 16, 16)" in problems_of(archive, info)

    assert peak_bytes_of(check) < 4 << 20  # decoding it would take 125 MB (1 GB as int64)


def test_a_30000_square_png_truth_is_refused_with_a_named_problem(tmp_path):
    make_zip(tmp_path / "truth.zip", {"c1.png": png_bytes(size=(30000, 30000), encoded_rows=10)}, zipfile.ZIP_STORED)

    def check():
        with pytest.raises(ValueError, match="truth truth.zip, entry 'c1.png': has 900,000,000 voxels, more than "
                                             "the 268,435,456 allowed"):
            evaluator.describe_truth("segmentation", tmp_path / "truth.zip")

    assert peak_bytes_of(check) < 4 << 20


def test_a_participants_own_check_without_shapes_still_caps_the_voxels(tmp_path):
    archive = make_zip(tmp_path / "p.zip", {"c1.png": png_bytes(size=(20000, 20000), encoded_rows=10)},
                       zipfile.ZIP_STORED)
    with pytest.raises(SubmissionInvalid, match="has 400,000,000 voxels, more than the 268,435,456 allowed"):
        evaluator.validate("segmentation", archive, case_ids=["c1"])


# ----------------------------------------------------------------------------- stored widths
def test_masks_keep_their_stored_integer_width(tmp_path):
    arr = np.zeros((6, 5), np.uint16)
    arr[1, 1] = 300
    Image.fromarray(arr).save(tmp_path / "wide.png")
    save_nii(tmp_path / "c.nii.gz", np.ones((4, 4, 4)))
    img = nib.Nifti1Image(np.full((4, 4, 4), 2.0, np.float32), np.eye(4))
    nib.save(img, str(tmp_path / "f.nii.gz"))
    img = nib.Nifti1Image(np.full((4, 4, 4), 0.5, np.float32), np.eye(4))
    nib.save(img, str(tmp_path / "half.nii.gz"))
    log = evaluator.problems.ProblemLog("x")
    with M.open_masks(tmp_path, log) as found:
        got = {cid: M.read_mask(f, M.read_header(f)) for cid, f in found.files.items() if cid != "half"}
        with pytest.raises(ValueError, match="integer labels"):
            M.read_mask(found.files["half"], M.read_header(found.files["half"]))
    assert got["wide"].dtype == np.uint16 and got["wide"][1, 1] == 300
    assert got["c"].dtype == np.uint8 and got["f"].dtype == np.uint8 and got["f"].max() == 2


def test_a_truth_zip_gives_the_same_facts_as_its_folder(png_truth):
    masks, folder, archive, info = png_truth
    assert evaluator.describe_truth("segmentation", folder) == info
    assert info["masks"]["c1"] == {"shape": [16, 20], "dtype": "uint8", "spacing": [1.0, 1.0]}
    assert json.loads(json.dumps(info)) == info
    shutil.rmtree(folder)
    archive.unlink()  # validation from the facts needs no truth file
    ok = make_zip(archive.parent / "ok.zip", {"c1.png": png_bytes(masks["c1"])})
    evaluator.validate("segmentation", ok, truth_info=info, name="ok.zip")
    bad = np.where(masks["c2"] > 0, 3, 0)
    assert "labels [3] are not among the truth's labels [1]" in \
        problems_of(make_zip(archive.parent / "bad.zip", {"c2.png": png_bytes(bad)}), info)


def test_a_corrupt_truth_zip_is_a_named_value_error(tmp_path, png_truth):
    masks = png_truth[0]
    good = png_bytes(masks["c1"])
    data = bytearray(make_zip(tmp_path / "t.zip", {"c1.png": good}, zipfile.ZIP_STORED).read_bytes())
    data[data.find(good) + len(good) - 40] ^= 0xFF
    (tmp_path / "t.zip").write_bytes(bytes(data))
    corrupt = "^truth t.zip, entry 'c1.png': is corrupt: its data fails the archive's CRC-32"
    with pytest.raises(ValueError, match=corrupt):
        evaluator.describe_truth("segmentation", tmp_path / "t.zip")
    make_zip(tmp_path / "two.zip", {"a/c1.png": good, "b/c1.png": good})
    with pytest.raises(ValueError, match="entry 'b/c1.png': has the same file name as entry 'a/c1.png'"):
        evaluator.describe_truth("segmentation", tmp_path / "two.zip")
    make_zip(tmp_path / "empty.zip", {"__MACOSX/._c1.png": b"", "readme/": b""})
    with pytest.raises(ValueError, match="truth empty.zip holds no masks"):
        evaluator.describe_truth("segmentation", tmp_path / "empty.zip")


def test_an_entry_larger_than_its_shape_can_need_is_refused_before_it_is_read(tmp_path, png_truth):
    masks, _, _, info = png_truth
    padded = png_bytes(masks["c1"]) + bytes(3 << 20)  # a real 16 × 20 PNG with 3 MiB of trailing bytes
    archive = make_zip(tmp_path / "p.zip", {"c1.png": padded})
    text = problems_of(archive, info)
    assert f"case 'c1': is {len(padded):,} bytes, more than a mask of shape (16, 20) can need" in text
