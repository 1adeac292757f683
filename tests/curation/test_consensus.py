"""Majority vote by hand; weighted box fusion against ensemble-boxes; STAPLE against its own
equations (Warfield 2004) through SimpleITK; mask voting against SimpleITK's LabelVoting."""

import math

import numpy as np
import pytest
import SimpleITK as sitk
from ensemble_boxes import weighted_boxes_fusion

import curation


def test_majority_vote_takes_the_most_chosen_label():
    votes = curation.majority_vote({"c1": {"A": "yes", "B": "yes", "C": "no"},
                                    "c2": {"A": "no", "B": "no", "C": None}})
    assert votes["c1"].label == "yes" and votes["c1"].votes == {"yes": 2, "no": 1} and votes["c1"].n_readers == 3
    assert votes["c2"].label == "no" and votes["c2"].n_readers == 2
    assert curation.needing_adjudication(votes) == []


def test_a_tie_goes_to_adjudication_and_is_never_broken():
    votes = curation.majority_vote({"c1": {"A": "yes", "B": "no"},
                                    "c2": {"A": 1, "B": 2, "C": 3},
                                    "c3": {"A": 1, "B": 1, "C": 2, "D": 2, "E": 3}})
    assert [v.label for v in votes.values()] == [None, None, None]
    assert all(v.needs_adjudication for v in votes.values())
    assert curation.needing_adjudication(votes) == ["c1", "c2", "c3"]


def test_strict_majority_needs_more_than_half():
    answers = {"c1": {"A": 1, "B": 1, "C": 2, "D": 3}, "c2": {"A": 1, "B": 1, "C": 2}}
    assert curation.majority_vote(answers)["c1"].label == 1
    strict = curation.majority_vote(answers, strict=True)
    assert strict["c1"].label is None and strict["c2"].label == 1


def test_fused_boxes_are_the_mean_of_agreeing_readers_boxes():
    # A (10,10,50,50) and B (12,12,50,50) overlap with IoU 2304/2696 ≈ 0.85: fused to their mean
    # (11,11,50,50), 2 readers. B's small box far away has one reader: below the 2 of 3 needed.
    boxes = {"c1": {"A": [[10, 10, 50, 50]], "B": [[12, 12, 50, 50], [200, 200, 10, 10]], "C": []},
             "c2": {"A": [], "B": []}}
    got = curation.fuse_boxes(boxes, {"c1": (512, 400), "c2": (512, 512)})
    c1 = got["c1"]
    assert np.allclose(c1.boxes, [[11, 11, 50, 50]], atol=1e-3)
    assert c1.n_readers.tolist() == [2] and c1.n_readers_total == 3 and c1.min_readers == 2
    assert np.allclose(c1.rejected, [[200, 200, 10, 10]], atol=1e-3) and c1.rejected_n_readers.tolist() == [1]
    assert c1.needs_adjudication
    assert got["c2"].boxes.shape == (0, 4) and not got["c2"].needs_adjudication
    one = curation.fuse_boxes(boxes, {"c1": (512, 400), "c2": (512, 512)}, min_readers=1)["c1"]
    assert len(one.boxes) == 2 and not one.needs_adjudication


def test_two_boxes_of_one_reader_in_a_cluster_count_as_one_reader():
    boxes = {"c1": {"A": [[10, 10, 50, 50], [11, 11, 50, 50]], "B": []}}
    got = curation.fuse_boxes(boxes, {"c1": (100, 100)}, min_readers=1)["c1"]
    assert got.n_readers.tolist() == [1]


def random_reader_boxes(rng, n_readers, size):
    """Readers mark some of a few well-separated lesions, each box jittered; at most one box per
    lesion per reader, so that a cluster's boxes come from distinct readers."""
    w, h = size
    lesions = [(x, y) for x in (0.05, 0.55) for y in (0.05, 0.55)]
    rows = {}
    for r in range(n_readers):
        boxes = []
        for lx, ly in lesions:
            if rng.random() < 0.6:
                bw, bh = rng.uniform(0.15, 0.3) * w, rng.uniform(0.15, 0.3) * h
                boxes.append([lx * w + rng.uniform(0, 4), ly * h + rng.uniform(0, 4), bw, bh])
        rows[f"r{r}"] = boxes
    return rows


def test_box_fusion_agrees_with_ensemble_boxes_on_random_readers(rng):
    for trial in range(30):
        size = (float(rng.integers(256, 4000)), float(rng.integers(256, 4000)))
        n = int(rng.integers(2, 6))
        rows = random_reader_boxes(rng, n, size)
        got = curation.fuse_boxes({"c": rows}, {"c": size}, min_readers=1, iou_threshold=0.3)["c"]
        w, h = size
        boxes_list = [np.array([[x / w, y / h, (x + bw) / w, (y + bh) / h] for x, y, bw, bh in b]).reshape(-1, 4)
                      for b in rows.values()]
        ones = [np.ones(len(b)) for b in boxes_list]
        # the reference: plain "avg" confidences with overflow allowed give (boxes in cluster) / readers
        ref, scores, _ = weighted_boxes_fusion(boxes_list, ones, [np.zeros(len(b)) for b in boxes_list],
                                               iou_thr=0.3, conf_type="avg", allows_overflow=True)
        ref = ref * [w, h, w, h]
        ref_xywh = np.c_[ref[:, :2], ref[:, 2:] - ref[:, :2]]
        ref_counts = np.rint(scores * n).astype(int)
        order = np.lexsort((ref_xywh[:, 1], ref_xywh[:, 0]))
        mine = np.lexsort((got.boxes[:, 1], got.boxes[:, 0]))
        assert np.allclose(got.boxes[mine], ref_xywh[order], atol=1e-3 * max(size))
        assert got.n_readers[mine].tolist() == ref_counts[order].tolist()
        assert got.n_readers.sum() == sum(len(b) for b in rows.values())


def test_default_minimum_is_more_than_half_of_the_readers():
    box = [[10, 10, 20, 20]]
    two_of_four = {"c": {"A": box, "B": box, "C": [], "D": []}}
    assert len(curation.fuse_boxes(two_of_four, {"c": (64, 64)})["c"].boxes) == 0
    three_of_four = {"c": {"A": box, "B": box, "C": box, "D": []}}
    assert curation.fuse_boxes(three_of_four, {"c": (64, 64)})["c"].n_readers.tolist() == [3]


def noisy_readers(rng, truth, flips):
    out = {}
    for i, p in enumerate(flips):
        m = truth.copy()
        f = rng.random(truth.shape) < p
        m[f] = ~m[f]
        out[f"r{i}"] = m
    return out


def test_staple_satisfies_its_equations(rng):
    # Warfield et al. (2004): with prior g (SimpleITK: the readers' mean foreground fraction),
    # W = g Πⱼ pⱼ^Dⱼ (1 − pⱼ)^(1 − Dⱼ) / (that + (1 − g) Πⱼ qⱼ^(1 − Dⱼ) (1 − qⱼ)^Dⱼ)  (E-step) and
    # pⱼ = Σ W Dⱼ / Σ W, qⱼ = Σ (1 − W)(1 − Dⱼ) / Σ (1 − W)                  (M-step, at convergence)
    truth = np.zeros((40, 50), bool)
    truth[8:30, 10:35] = True
    masks = noisy_readers(rng, truth, (0.02, 0.1, 0.3))
    got = curation.staple({"c": masks})["c"]
    D = np.stack(list(masks.values())).astype(float)
    p = np.array([got.sensitivity[r] for r in masks])[:, None, None]
    q = np.array([got.specificity[r] for r in masks])[:, None, None]
    g = D.mean()
    fg = g * np.prod(np.where(D == 1, p, 1 - p), axis=0)
    bg = (1 - g) * np.prod(np.where(D == 1, 1 - q, q), axis=0)
    W = got.probability
    assert np.allclose(W, fg / (fg + bg), atol=1e-9)
    assert np.allclose(p.ravel(), (W * D).sum(axis=(1, 2)) / W.sum(), atol=1e-5)
    assert np.allclose(q.ravel(), ((1 - W) * (1 - D)).sum(axis=(1, 2)) / (1 - W).sum(), atol=1e-5)
    assert np.array_equal(got.mask, W >= 0.5)
    # the noisiest reader is estimated as the least sensitive and specific
    assert got.sensitivity["r2"] < got.sensitivity["r0"] and got.specificity["r2"] < got.specificity["r0"]
    assert (got.mask != truth).sum() < (masks["r2"] != truth).sum()


def test_staple_of_identical_readers_is_their_mask():
    m = np.zeros((10, 10), np.uint8)
    m[2:6, 3:8] = 1
    got = curation.staple({"c": {"A": m, "B": m, "C": m}})["c"]
    assert np.array_equal(got.mask, m.astype(bool))
    assert got.sensitivity == pytest.approx({"A": 1.0, "B": 1.0, "C": 1.0})


def test_staple_with_no_foreground_at_all_is_empty_not_nan():
    z = np.zeros((5, 5, 3))
    got = curation.staple({"c": {"A": z, "B": z}})["c"]
    assert not got.mask.any() and np.all(got.probability == 0)
    assert math.isnan(got.sensitivity["A"]) and got.specificity["A"] == 1.0


def test_mask_vote_matches_simpleitk_label_voting(rng):
    for trial in range(10):
        n = int(rng.integers(2, 6))
        shape = (int(rng.integers(5, 30)), int(rng.integers(5, 30)))
        masks = {f"r{i}": rng.integers(0, 3, shape) for i in range(n)}
        got = curation.majority_vote_mask({"c": masks})["c"]
        f = sitk.LabelVotingImageFilter()
        ref = sitk.GetArrayFromImage(f.Execute([sitk.GetImageFromArray(m.astype(np.uint8)) for m in masks.values()]))
        undecided = ref == 3  # SimpleITK's default: the largest label + 1
        assert np.array_equal(got.tied, undecided)
        assert np.array_equal(got.mask[~undecided], ref[~undecided])
        assert np.all(got.mask[undecided] == 0)


def test_binary_mask_vote_is_more_than_half_of_the_readers():
    a = np.array([[1, 1, 0, 0]])
    b = np.array([[1, 0, 1, 0]])
    c = np.array([[1, 0, 0, 0]])
    got = curation.majority_vote_mask({"c": {"A": a, "B": b, "C": c}})["c"]
    assert got.mask.tolist() == [[1, 0, 0, 0]] and got.votes.tolist() == [[3, 2, 2, 3]]
    assert not got.needs_adjudication
    even = curation.majority_vote_mask({"c": {"A": a, "B": b}})["c"]
    assert even.tied.tolist() == [[False, True, True, False]] and even.needs_adjudication


def test_multilabel_staple_outvotes_a_careless_reader_and_flags_undecided_pixels(rng):
    truth = np.zeros((30, 30), np.int64)
    truth[2:12, 2:12] = 1
    truth[15:28, 5:25] = 2
    masks = {}
    for i, p in enumerate((0.02, 0.05, 0.4)):
        m = truth.copy()
        flip = rng.random(truth.shape) < p
        m[flip] = rng.integers(0, 3, flip.sum())
        masks[f"r{i}"] = m
    got = curation.multilabel_staple({"c": masks})["c"]
    assert (got.mask != truth).sum() < (masks["r2"] != truth).sum()
    assert (got.mask != truth).sum() <= 0.02 * truth.size
    f = sitk.MultiLabelSTAPLEImageFilter()
    ref = sitk.GetArrayFromImage(f.Execute([sitk.GetImageFromArray(m.astype(np.uint8)) for m in masks.values()]))
    assert np.array_equal(got.mask, np.where(ref == 3, 0, ref)) and np.array_equal(got.undecided, ref == 3)
    # two readers, one structure, symmetric disagreement: the disputed pixels are undecided, not guessed
    square = (truth == 1).astype(np.int64)
    split = curation.multilabel_staple({"c": {"A": square, "B": np.zeros_like(square)}})["c"]
    assert np.array_equal(split.undecided, square > 0) and not split.mask.any() and split.needs_adjudication


def test_multilabel_staple_keeps_labels_above_255():
    m = np.zeros((6, 6), np.int64)
    m[1:4, 1:4] = 300
    got = curation.multilabel_staple({"c": {"A": m, "B": m, "C": np.zeros_like(m)}})["c"]
    assert np.array_equal(got.mask, m) and not got.needs_adjudication
