"""Segmentation metrics against scipy implementations written here (and MONAI when installed)."""

import math
import warnings

import nibabel as nib
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

import evaluator
from evaluator import SubmissionInvalid, segmentation as S


# ----------------------------------------------------------------------------- references
def hd95_reference(t, p, spacing):
    """MONAI's definition written with scipy on the whole image."""
    def surface(m):
        return m ^ ndimage.binary_erosion(m)

    st, sp = surface(t), surface(p)
    d_pt = ndimage.distance_transform_edt(~st, sampling=spacing)[sp]
    d_tp = ndimage.distance_transform_edt(~sp, sampling=spacing)[st]
    return max(np.percentile(d_pt, 95), np.percentile(d_tp, 95))


def nsd_reference_2d(t, p, spacing, tol):
    """DeepMind's 2-D surface Dice (contour lengths of marching squares), written with scipy."""
    diag = 0.5 * math.hypot(*spacing)
    length = np.zeros(16)
    for code in range(16):
        bits = [(code >> b) & 1 for b in (3, 2, 1, 0)]  # corners (0,0) (0,1) (1,0) (1,1)
        n = sum(bits)
        if n in (1, 3):
            length[code] = diag
        elif n == 2:
            if bits[0] == bits[3]:  # diagonal corners
                length[code] = 2 * diag
            elif bits[0] == bits[1]:  # same first index: cut parallel to axis 1
                length[code] = spacing[1]
            else:
                length[code] = spacing[0]
    kernel = np.array([[8, 4], [2, 1]])
    pad = [(1, 1)] * 2
    ct = np.pad(t, pad).astype(np.uint8)
    cp = np.pad(p, pad).astype(np.uint8)
    code_t = ndimage.correlate(ct, kernel, mode="constant")
    code_p = ndimage.correlate(cp, kernel, mode="constant")
    bt = (code_t != 0) & (code_t != 15)
    bp = (code_p != 0) & (code_p != 15)
    d_tp = ndimage.distance_transform_edt(~bp, sampling=spacing)[bt]
    d_pt = ndimage.distance_transform_edt(~bt, sampling=spacing)[bp]
    at, ap = length[code_t[bt]], length[code_p[bp]]
    return (at[d_tp <= tol].sum() + ap[d_pt <= tol].sum()) / (at.sum() + ap.sum())


def blobs(rng, shape, sigma=3):
    return ndimage.gaussian_filter(rng.random(shape), sigma) > 0.5


# ----------------------------------------------------------------------------- metrics
def test_dice_and_iou_known_values():
    t = np.zeros((4, 4), bool)
    p = np.zeros((4, 4), bool)
    t[:2, :2] = True  # 4 pixels
    p[:2, :3] = True  # 6 pixels, 4 shared
    assert S.dice_score(t, p) == pytest.approx(0.8)
    assert S.iou_score(t, p) == pytest.approx(4 / 6)
    assert S.absolute_volume_difference(t, p, (0.5, 2.0)) == pytest.approx(2.0)


@pytest.mark.parametrize("seed", range(4))
def test_hd95_matches_scipy(seed):
    rng = np.random.default_rng(seed)
    shape, spacing = ((40, 36, 30), (0.8, 1.0, 2.5)) if seed % 2 else ((64, 50), (0.7, 1.3))
    t, p = blobs(rng, shape), blobs(rng, shape)
    want = hd95_reference(t, p, spacing)
    assert S.hausdorff_distance_95(t, p, spacing) == pytest.approx(want, abs=1e-9)
    assert S.hausdorff_distance_95(t, p, spacing, method="cdist") == pytest.approx(want, abs=1e-9)


def test_hd95_counts_the_image_border_as_surface():
    t = np.zeros((10, 10), bool)
    t[:5, :] = True
    p = np.zeros((10, 10), bool)
    p[:7, :] = True
    assert S.hausdorff_distance_95(t, p) == pytest.approx(hd95_reference(t, p, (1, 1)))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("tol", [0.0, 1.0, 2.5])
def test_nsd_2d_matches_the_deepmind_definition(seed, tol):
    rng = np.random.default_rng(seed)
    spacing = (0.7, 1.3)
    t, p = blobs(rng, (60, 50)), blobs(rng, (60, 50))
    want = nsd_reference_2d(t, p, spacing, tol)
    assert S.normalized_surface_dice(t, p, spacing, tolerance=tol) == pytest.approx(want, abs=1e-12)
    assert S.normalized_surface_dice(t, p, spacing, tolerance=tol, method="cdist") == pytest.approx(want, abs=1e-12)


def test_nsd_is_1_for_identical_masks_and_uses_an_inclusive_tolerance():
    t = np.zeros((20, 20, 20), bool)
    t[5:15, 5:15, 5:15] = True
    assert S.normalized_surface_dice(t, t, (1, 1, 1), tolerance=0) == pytest.approx(1.0)
    p = np.roll(t, 1, axis=0)
    assert S.normalized_surface_dice(t, p, (2, 1, 1), tolerance=2.0) == pytest.approx(1.0)
    assert S.normalized_surface_dice(t, p, (2, 1, 1), tolerance=1.999) < 1.0


def test_the_3d_surfel_table_gives_the_area_of_a_box():
    # a box's surface: the codes on its faces, edges and corners sum to the box's area,
    # up to the marching-cubes rounding of edges and corners (a cube of side 10 voxels).
    table = S.surfel_measure_table((1.0, 1.0, 1.0))
    assert table[0b00000001] == pytest.approx(math.sqrt(3) / 8)
    assert table[0b00001111] == pytest.approx(1.0)
    assert table[0b00110011] == pytest.approx(1.0)
    assert table[0b00000011] == pytest.approx(math.sqrt(2) / 2)
    np.testing.assert_allclose(table, table[::-1])  # complement codes have the same surface


def test_3d_nsd_agrees_with_monai_subvoxels_on_boxes():
    monai = pytest.importorskip("monai.metrics")
    import torch

    t = np.zeros((24, 22, 20), bool)
    p = np.zeros_like(t)
    t[4:15, 5:17, 3:12] = True
    p[6:18, 4:15, 5:14] = True
    sp = (1.0, 0.8, 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = float(monai.compute_surface_dice(torch.as_tensor(p)[None, None].float(),
                                                torch.as_tensor(t)[None, None].float(), class_thresholds=[1.5],
                                                include_background=True, spacing=sp, use_subvoxels=True))
    assert S.normalized_surface_dice(t, p, sp, tolerance=1.5) == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("shape, spacing", [((30, 28, 26), (1.0, 0.8, 2.0)), ((40, 36), (0.7, 1.3))])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nsd_matches_deepminds_surface_dice(shape, spacing, seed):
    import surface_distance

    rng = np.random.default_rng(seed)
    t, p = blobs(rng, shape), blobs(rng, shape)
    distances = surface_distance.compute_surface_distances(t, p, spacing)
    for tolerance in (0.0, 1.0, 2.5):
        want = surface_distance.compute_surface_dice_at_tolerance(distances, tolerance)
        assert S.normalized_surface_dice(t, p, spacing, tolerance=tolerance) == pytest.approx(want, abs=1e-9)


def test_3d_nsd_agrees_with_monai_subvoxels_on_blobs():
    monai = pytest.importorskip("monai.metrics")
    import torch

    rng = np.random.default_rng(0)
    t, p = blobs(rng, (30, 28, 26)), blobs(rng, (30, 28, 26))
    sp = (1.0, 0.8, 2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        want = float(monai.compute_surface_dice(torch.as_tensor(p)[None, None].float(),
                                                torch.as_tensor(t)[None, None].float(), class_thresholds=[1.5],
                                                include_background=True, spacing=sp, use_subvoxels=True))
    assert S.normalized_surface_dice(t, p, sp, tolerance=1.5) == pytest.approx(want, abs=1e-6)


def test_empty_masks_follow_mica_convention():
    e = np.zeros((10, 20), bool)
    f = e.copy()
    f[2:4, 2:4] = True
    with pytest.warns(S.EmptyMaskWarning):
        assert S.dice_score(e, e) == 1.0
    with pytest.warns(S.EmptyMaskWarning):
        assert S.hausdorff_distance_95(e, e) == 0.0
    with pytest.warns(S.EmptyMaskWarning):
        assert S.hausdorff_distance_95(f, e, (2.0, 0.5)) == pytest.approx(math.hypot(20, 10))
    with pytest.warns(S.EmptyMaskWarning):
        assert S.normalized_surface_dice(e, f) == 0.0
    m = S.case_metrics(e, e)
    assert (m["dice"], m["iou"], m["nsd"], m["hd95"]) == (1.0, 1.0, 1.0, 0.0)


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="different shapes"):
        S.dice_score(np.zeros((3, 3)), np.zeros((3, 4)))
    with pytest.raises(ValueError, match="spacing must be 2 positive numbers"):
        S.dice_score(np.zeros((3, 3)), np.zeros((3, 3)), (1, 0))


# ----------------------------------------------------------------------------- the task
def save_nii(path, arr, spacing=(1.0, 1.0, 2.0)):
    img = nib.Nifti1Image(arr.astype(np.uint8), np.diag([*spacing, 1.0]))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))


def save_png(path, arr, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint8)).convert(mode).save(path)


def test_the_task_scores_nifti_folders_with_missing_cases(tmp_path, rng):
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    masks = {c: blobs(rng, (20, 18, 12)) for c in ("c1", "c2", "c3")}
    for m in masks.values():
        m[:, :, -1] = False  # so that np.roll shifts without wrapping around
    for c, m in masks.items():
        save_nii(truth / f"{c}.nii.gz", m)
    save_nii(pred / "c1.nii.gz", masks["c1"])
    save_nii(pred / "c2.nii.gz", np.roll(masks["c2"], 1, axis=2))
    r = evaluator.score("segmentation", truth, pred, {"nsd_tolerance": 2.0})
    assert r["n_cases"] == 3 and r["missing_cases"] == 1
    rows = {row["case_id"]: row for row in r["per_case"]}
    assert rows["c1"]["dice"] == 1.0 and rows["c1"]["hd95"] == 0.0
    assert rows["c2"]["dice"] == pytest.approx(S.dice_score(masks["c2"], np.roll(masks["c2"], 1, axis=2)))
    assert rows["c2"]["hd95"] == pytest.approx(hd95_reference(masks["c2"], np.roll(masks["c2"], 1, 2), (1, 1, 2)))
    assert rows["c2"]["nsd"] == 1.0  # a one-slice shift (2 mm) within the 2 mm tolerance
    assert rows["c3"]["dice"] == 0.0 and rows["c3"]["hd95"] == pytest.approx(math.sqrt(20**2 + 18**2 + 24**2))
    assert r["metrics"]["dice"] == pytest.approx(np.mean([rows[c]["dice"] for c in rows]))


def test_the_task_scores_multi_class_png(tmp_path):
    t = np.zeros((16, 16), np.uint8)
    t[2:6, 2:6] = 1
    t[8:12, 8:14] = 2
    p = t.copy()
    p[8:12, 8:10] = 0
    save_png(tmp_path / "t" / "a.png", t)
    save_png(tmp_path / "p" / "a.png", p)
    r = evaluator.score("segmentation", tmp_path / "t", tmp_path / "p")
    m = r["metrics"]
    assert m["dice/1"] == 1.0
    assert m["dice/2"] == pytest.approx(2 * 16 / (24 + 16))
    assert m["dice"] == pytest.approx((1 + m["dice/2"]) / 2)


def test_the_task_reports_every_bad_mask(tmp_path, rng):
    truth, pred = tmp_path / "truth", tmp_path / "pred"
    for c in ("c1", "c2", "c3", "c4"):
        save_nii(truth / f"{c}.nii.gz", blobs(rng, (10, 10, 6)))
    save_nii(pred / "c1.nii.gz", np.zeros((10, 10, 5)))
    save_nii(pred / "c2.nii.gz", np.zeros((10, 10, 6)), spacing=(1.0, 1.0, 3.0))
    (pred / "c3.nii.gz").write_bytes(b"not a nifti file")
    save_nii(pred / "c4.nii.gz", np.full((10, 10, 6), 3))
    save_nii(pred / "c9.nii.gz", np.zeros((10, 10, 6)))
    (pred / "notes.txt").write_text("hi")
    with pytest.raises(SubmissionInvalid) as exc:
        evaluator.validate("segmentation", pred, truth=truth)
    text = str(exc.value)
    for msg in ("pred/c1.nii.gz, case 'c1': mask size (10, 10, 5) differs from the truth's (10, 10, 6)",
                "spacing (1.0, 1.0, 3.0) mm differs from the truth's (1.0, 1.0, 2.0) mm",
                "pred/c3.nii.gz, case 'c3': is not a readable NIfTI image",
                "labels [3] are not among the truth's labels [1]",
                "unknown case id 'c9'", "pred/notes.txt: unexpected file"):
        assert msg in text, text
    with pytest.raises(SubmissionInvalid):
        evaluator.score("segmentation", truth, pred)


def test_an_rgb_png_is_refused(tmp_path):
    save_png(tmp_path / "t" / "a.png", np.zeros((8, 8)))
    save_png(tmp_path / "p" / "a.png", np.zeros((8, 8)), mode="RGB")
    with pytest.raises(SubmissionInvalid, match="single-channel"):
        evaluator.validate("segmentation", tmp_path / "p", truth=tmp_path / "t")
