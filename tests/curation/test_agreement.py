"""Kappas and alpha against statsmodels, scikit-learn and krippendorff; overlaps and per-reader figures."""

import math
import warnings

import krippendorff
import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score, confusion_matrix
from statsmodels.stats.inter_rater import aggregate_raters, cohens_kappa, fleiss_kappa

import curation
from curation import UndefinedAgreementWarning

from .conftest import random_labels


def two_readers(a, b):
    return {f"c{i}": {"A": x, "B": y} for i, (x, y) in enumerate(zip(a, b))}


def test_cohen_kappa_on_a_hand_checked_table():
    # A\B   yes no
    # yes    4   1     pₒ = 7/10; A says yes 5/10, B 6/10;
    # no     2   3     pₑ = .5·.6 + .5·.4 = .5; κ = (.7 − .5)/(1 − .5) = 0.4
    a = ["yes"] * 5 + ["no"] * 5
    b = ["yes"] * 4 + ["no"] + ["yes"] * 2 + ["no"] * 3
    answers = two_readers(a, b)
    assert curation.cohen_kappa(answers, "A", "B") == pytest.approx(0.4, abs=1e-12)
    assert cohens_kappa(np.array([[4, 1], [2, 3]])).kappa == pytest.approx(0.4, abs=1e-12)


def test_weighted_kappa_on_a_hand_checked_ordinal_example():
    # pairs (0,0) (0,1) (1,1) (1,2) (2,2) (2,1): A uniform (1/3 each), B (1/6, 1/2, 1/3).
    # unweighted: pₒ = 1/2, pₑ = 1/3 → κ = 0.25
    # linear: Σ w·o = 3/6; Σ w·e = 1/3·(3/6 + 2/2 + 3/3) = 5/6 → κ = 1 − (1/2)/(5/6) = 0.4
    # quadratic: Σ w·o = 3/6; Σ w·e = 1/3·(5/6 + 2/2 + 5/3) = 7/6 → κ = 1 − (1/2)/(7/6) = 4/7
    answers = two_readers([0, 0, 1, 1, 2, 2], [0, 1, 1, 2, 2, 1])
    assert curation.cohen_kappa(answers, "A", "B") == pytest.approx(0.25, abs=1e-12)
    assert curation.cohen_kappa(answers, "A", "B", weights="linear") == pytest.approx(0.4, abs=1e-12)
    assert curation.cohen_kappa(answers, "A", "B", weights="quadratic") == pytest.approx(4 / 7, abs=1e-12)
    table = np.array([[1, 1, 0], [0, 1, 1], [0, 1, 1]])
    assert [cohens_kappa(table, wt=w).kappa for w in (None, "linear", "quadratic")] == pytest.approx([0.25, 0.4, 4 / 7])


@pytest.mark.parametrize("weights", [None, "linear", "quadratic"])
def test_cohen_kappa_matches_statsmodels_and_sklearn_on_random_answers(rng, weights):
    categories = ["none", "mild", "moderate", "severe"]
    for trial in range(20):
        answers = random_labels(rng, int(rng.integers(5, 60)), ["A", "B", "C"], categories, missing=0.2)
        common = [row for row in answers.values() if "A" in row and "B" in row]
        if not common:
            continue
        a = [categories.index(r["A"]) for r in common]
        b = [categories.index(r["B"]) for r in common]
        table = np.zeros((4, 4))
        np.add.at(table, (a, b), 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected_sm = cohens_kappa(table, wt=weights).kappa
            expected_sk = cohen_kappa_score(a, b, labels=[0, 1, 2, 3], weights=weights)
            got = curation.cohen_kappa(answers, "A", "B", weights=weights, categories=categories)
        if math.isnan(expected_sk):
            assert math.isnan(got)
            continue
        assert got == pytest.approx(expected_sk, abs=1e-10)
        assert got == pytest.approx(expected_sm, abs=1e-10)


def test_unweighted_kappa_ignores_the_order_and_unused_categories():
    answers = two_readers(["x", "y", "y", "z"], ["x", "y", "z", "z"])
    plain = curation.cohen_kappa(answers, "A", "B")
    assert curation.cohen_kappa(answers, "A", "B", categories=["z", "w", "y", "x"]) == pytest.approx(plain)


def test_kappa_is_nan_with_a_warning_when_both_readers_give_one_answer():
    answers = two_readers(["yes"] * 4, ["yes"] * 4)
    with pytest.warns(UndefinedAgreementWarning):
        assert math.isnan(curation.cohen_kappa(answers, "A", "B"))


def test_pairwise_kappa_is_a_symmetric_reader_matrix(rng):
    answers = random_labels(rng, 40, ["A", "B", "C", "D"], [0, 1, 2], missing=0.3)
    m = curation.pairwise_kappa(answers, weights="quadratic", categories=[0, 1, 2])
    assert sorted(m.readers) == ["A", "B", "C", "D"]
    assert np.allclose(m.values, m.values.T, equal_nan=True)
    i, j = m.readers.index("B"), m.readers.index("D")
    assert m.values[i, j] == pytest.approx(curation.cohen_kappa(answers, "B", "D", weights="quadratic",
                                                                categories=[0, 1, 2]))
    assert m.n_cases[i, j] == sum(1 for row in answers.values() if "B" in row and "D" in row)
    assert m.values[i, i] == pytest.approx(1.0)
    assert m.as_dict()["n_cases"][i][j] == m.n_cases[i, j]


def test_fleiss_kappa_on_a_hand_checked_example():
    # case 1: a a a → P = (9 − 3)/6 = 1;  case 2: a a b → P = (4 + 1 − 3)/6 = 1/3;  case 3: b b b → P = 1
    # p_a = 5/9, p_b = 4/9, Pₑ = 41/81, P̄ = 7/9 = 63/81 → κ = (22/81)/(40/81) = 0.55
    answers = {"c1": {"A": "a", "B": "a", "C": "a"}, "c2": {"A": "a", "B": "a", "C": "b"},
               "c3": {"A": "b", "B": "b", "C": "b"}}
    assert curation.fleiss_kappa(answers) == pytest.approx(0.55, abs=1e-12)


def test_fleiss_kappa_matches_statsmodels_on_random_answers(rng):
    readers = [f"r{i}" for i in range(5)]
    for trial in range(20):
        n_per_case = int(rng.integers(2, 6))
        answers = {}
        for c in range(int(rng.integers(3, 50))):
            chosen = rng.choice(readers, size=n_per_case, replace=False)
            answers[f"c{c}"] = {r: int(rng.integers(0, 4)) for r in chosen}
        data = np.array([list(row.values()) for row in answers.values()])
        counts, _ = aggregate_raters(data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = fleiss_kappa(counts, method="fleiss")
            got = curation.fleiss_kappa(answers)
        assert got == pytest.approx(expected, abs=1e-10, nan_ok=True)


def test_krippendorff_alpha_on_hand_checked_examples():
    # nominal: u1 = (1, 1, ·), u2 = (1, 2, 2), u3 = (2, 2, 2)
    # coincidences: o11 = 2 (u1); o12 = o21 = 1, o22 = 1 (u2, each pair /2); o22 += 3 (u3)
    # n1 = 3, n2 = 5, n = 8: Dₒ = 2/8, Dₑ = 2·3·5/(8·7) = 30/56 → α = 1 − 14/30 = 8/15
    answers = {"u1": {"A": 1, "B": 1, "C": None}, "u2": {"A": 1, "B": 2, "C": 2}, "u3": {"A": 2, "B": 2, "C": 2}}
    assert curation.krippendorff_alpha(answers) == pytest.approx(8 / 15, abs=1e-12)
    # interval: u1 = (1, 3), u2 = (2, 2): o13 = o31 = 1, o22 = 2; n1 = 1, n2 = 2, n3 = 1, n = 4
    # Dₒ = (1·4 + 1·4)/4 = 2; Dₑ = (2·1·2·1 + 2·1·1·4 + 2·2·1·1)/(4·3) = 16/12 → α = 1 − 2/(4/3) = −0.5
    answers = {"u1": {"A": 1, "B": 3}, "u2": {"A": 2, "B": 2}}
    assert curation.krippendorff_alpha(answers, level="interval") == pytest.approx(-0.5, abs=1e-12)


@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval", "ratio"])
def test_krippendorff_alpha_matches_the_krippendorff_package_with_missing_answers(rng, level):
    readers = ["A", "B", "C", "D"]
    for trial in range(15):
        answers = random_labels(rng, int(rng.integers(4, 40)), readers, [1, 2, 3, 5, 8], missing=0.35)
        data = np.array([[row.get(r, np.nan) for row in answers.values()] for r in readers], dtype=float)
        if (np.sum(~np.isnan(data), axis=0) >= 2).sum() == 0 or len(np.unique(data[~np.isnan(data)])) < 2:
            continue
        expected = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
        assert curation.krippendorff_alpha(answers, level=level) == pytest.approx(expected, abs=1e-10)


def test_ordinal_alpha_follows_the_given_order_of_text_categories():
    order = ["none", "mild", "severe"]
    answers = {"u1": {"A": "none", "B": "mild"}, "u2": {"A": "severe", "B": "severe"},
               "u3": {"A": "mild", "B": "none"}, "u4": {"A": "none", "B": "none"}}
    data = np.array([[order.index(row[r]) for row in answers.values()] for r in "AB"], dtype=float)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal")
    assert curation.krippendorff_alpha(answers, level="ordinal", categories=order) == pytest.approx(expected)


def test_dice_and_iou_of_masks():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2, :2] = True           # 4 pixels
    b[:2, :3] = True           # 6 pixels, 4 shared
    assert curation.dice(a, b) == pytest.approx(2 * 4 / 10)   # 0.8
    assert curation.iou(a, b) == pytest.approx(4 / 6)
    empty = np.zeros((4, 4))
    assert curation.dice(empty, empty) == 1.0 and curation.iou(empty, empty) == 1.0
    assert curation.dice(a, empty) == 0.0


def test_mask_dice_matches_sklearn_f1_on_random_masks(rng):
    from sklearn.metrics import f1_score, jaccard_score

    for _ in range(10):
        a, b = rng.random((2, 30, 40)) < 0.3
        assert curation.dice(a, b) == pytest.approx(f1_score(a.ravel(), b.ravel()))
        assert curation.iou(a, b) == pytest.approx(jaccard_score(a.ravel(), b.ravel()))


def test_box_sets_are_matched_one_to_one_by_iou():
    # A: two boxes; B: one box overlapping A0 with IoU 2304/2696 ≈ 0.855, one far away
    a = [[10, 10, 50, 50], [100, 100, 20, 20]]
    b = [[12, 12, 50, 50], [300, 300, 10, 10]]
    pairs = curation.match_boxes(a, b)
    assert [(i, j) for i, j, _ in pairs] == [(0, 0)]
    assert pairs[0][2] == pytest.approx(2304 / 2696)
    got = curation.box_agreement(a, b)
    assert got["matched"] == 1
    assert got["dice"] == pytest.approx(2 * 1 / 4)      # 0.5
    assert got["iou"] == pytest.approx(1 / (4 - 1))     # 1/3
    assert got["mean_iou"] == pytest.approx(2304 / 2696)
    assert curation.box_agreement([], [])["dice"] == 1.0


def test_matching_prefers_the_best_total_not_the_first_greedy_pair():
    # B0 overlaps A0 a little more than A1, but A1 overlaps nothing else: the best one-to-one
    # pairing gives B0→A1 and B1→A0 (greedy A0→B0 would leave A1 unmatched).
    a = [[0, 0, 10, 10], [2, 0, 10, 10]]
    b = [[1, 0, 10, 10], [-1, 0, 10, 10]]
    a = np.array(a, float) + [5, 5, 0, 0]
    b = np.array(b, float) + [5, 5, 0, 0]
    pairs = curation.match_boxes(a, b, iou_threshold=0.6)
    assert sorted((i, j) for i, j, _ in pairs) == [(0, 1), (1, 0)]


def test_pairwise_box_and_mask_agreement(rng):
    boxes = {"c1": {"A": [[10, 10, 50, 50]], "B": [[12, 12, 50, 50]], "C": []},
             "c2": {"A": [], "B": [], "C": [[0, 0, 5, 5]]}}
    m = curation.pairwise_box_agreement(boxes)
    ab = m.values[m.readers.index("A"), m.readers.index("B")]
    ac = m.values[m.readers.index("A"), m.readers.index("C")]
    assert ab == pytest.approx((1.0 + 1.0) / 2)   # c1 one matched pair, c2 both empty
    assert ac == pytest.approx((0.0 + 0.0) / 2)
    masks = {"c1": {"A": np.eye(3), "B": np.eye(3)}, "c2": {"A": np.eye(3), "B": np.zeros((3, 3))}}
    m = curation.pairwise_mask_agreement(masks, metric="iou")
    assert m.values[0, 1] == pytest.approx(0.5) and m.n_cases[0, 1] == 2


def test_reader_sensitivity_and_specificity_against_the_consensus_match_sklearn(rng):
    answers = random_labels(rng, 80, ["A", "B", "C"], ["pos", "neg"])
    votes = curation.majority_vote(answers)
    consensus = {c: v.label for c, v in votes.items()}
    got = curation.reader_accuracy(answers, consensus, positive="pos")
    for reader in ("A", "B", "C"):
        truth = [consensus[c] == "pos" for c, row in answers.items() if reader in row]
        said = [row[reader] == "pos" for row in answers.values() if reader in row]
        tn, fp, fn, tp = confusion_matrix(truth, said, labels=[False, True]).ravel()
        assert (got[reader]["tp"], got[reader]["fp"], got[reader]["tn"], got[reader]["fn"]) == (tp, fp, tn, fn)
        assert got[reader]["sensitivity"] == pytest.approx(tp / (tp + fn))
        assert got[reader]["specificity"] == pytest.approx(tn / (tn + fp))


def test_unsettled_cases_are_left_out_of_reader_accuracy():
    answers = {"c1": {"A": 1, "B": 0}, "c2": {"A": 1, "B": 1}}
    got = curation.reader_accuracy(answers, {"c1": None, "c2": 1}, positive=1)
    assert got["B"]["n_cases"] == 1 and got["B"]["sensitivity"] == 1.0 and math.isnan(got["B"]["specificity"])


def test_intra_reader_agreement_compares_each_reader_with_themselves():
    first = {"c1": {"A": 0, "B": 1}, "c2": {"A": 1, "B": 1}, "c3": {"A": 2, "B": 0}, "c4": {"A": 0}}
    again = {"c1": {"A": 0, "B": 0}, "c2": {"A": 1}, "c3": {"A": 1}}
    got = curation.intra_reader_agreement(first, again, categories=[0, 1, 2])
    assert got["A"]["n_cases"] == 3 and got["A"]["agreement"] == pytest.approx(2 / 3)
    assert got["A"]["kappa"] == pytest.approx(cohen_kappa_score([0, 1, 2], [0, 1, 1], labels=[0, 1, 2]))
    assert got["B"]["n_cases"] == 1 and got["B"]["agreement"] == 0.0
    weighted = curation.intra_reader_agreement(first, again, weights="linear", categories=[0, 1, 2])
    assert weighted["A"]["kappa"] == pytest.approx(
        cohen_kappa_score([0, 1, 2], [0, 1, 1], labels=[0, 1, 2], weights="linear"))


def test_workload_counts_what_each_reader_was_given_and_has_done():
    queues = {"A": [("c1", False), ("c2", False), ("c1", True)], "B": [("c2", False)]}
    got = curation.workload(queues, answers={"c1": {"A": 1}, "c2": {"A": 0, "B": 1}}, rereads={"c1": {"A": 1}})
    assert got["A"] == {"assigned": 2, "rereads_assigned": 1, "done": 2, "rereads_done": 1, "remaining": 0,
                        "share": 0.75, "relative_load": 1.5}
    assert got["B"]["remaining"] == 0 and got["B"]["relative_load"] == 0.5


def test_a_pairs_kappa_uses_the_scale_of_the_whole_table_as_the_matrix_does():
    # A and B never use 1, but C does: the weighted distance from 0 to 2 is 2 steps for both
    answers = {"c1": {"A": 0, "B": 2, "C": 1}, "c2": {"A": 2, "B": 2, "C": 1}, "c3": {"A": 0, "B": 0, "C": 0}}
    m = curation.pairwise_kappa(answers, weights="linear")
    got = curation.cohen_kappa(answers, "A", "B", weights="linear")
    assert got == pytest.approx(m.values[0, 1])
    assert got == pytest.approx(cohen_kappa_score([0, 2, 0], [2, 2, 0], labels=[0, 1, 2], weights="linear"))


def test_cases_nobody_has_read_yet_are_left_out_of_the_agreement_figures():
    answers = {"c1": {"A": 1, "B": 1}, "c2": {"A": 0, "B": 1}, "c3": {}, "c4": {"A": None, "B": None}}
    read = {c: answers[c] for c in ("c1", "c2")}
    assert curation.pairwise_kappa(answers).n_cases.tolist() == curation.pairwise_kappa(read).n_cases.tolist()
    assert curation.krippendorff_alpha(answers) == pytest.approx(curation.krippendorff_alpha(read))
    assert curation.reader_accuracy(answers, {"c1": 1, "c2": 1, "c3": 1, "c4": None}, positive=1)["A"]["n_cases"] == 2
    assert curation.pairwise_box_agreement({"c1": {"A": [], "B": []}, "c2": {}}).n_cases.tolist() == [[1, 1], [1, 1]]
