"""Classification metrics against scikit-learn and straightforward O(n²) DeLong code."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from evaluator import classification as C


def delong_reference(y, a, b=None):
    """O(m·n) DeLong: AUC, variance, and the covariance with a second score."""
    y = np.asarray(y)

    def comps(s):
        X, Y = s[y == 1], s[y == 0]
        psi = (X[:, None] > Y[None, :]) + 0.5 * (X[:, None] == Y[None, :])
        return psi.mean(), psi.mean(1), psi.mean(0)

    A, v10a, v01a = comps(np.asarray(a, float))
    m, n = len(v10a), len(v01a)
    var = v10a.var(ddof=1) / m + v01a.var(ddof=1) / n
    if b is None:
        return A, var
    B, v10b, v01b = comps(np.asarray(b, float))
    varb = v10b.var(ddof=1) / m + v01b.var(ddof=1) / n
    cov = np.cov(v10a, v10b)[0, 1] / m + np.cov(v01a, v01b)[0, 1] / n
    return A, var, B, varb, cov


def random_case(rng, n=300, ties=True):
    y = rng.integers(0, 2, n)
    s = rng.random(n) + 0.4 * y
    if ties:
        s = np.round(s, 1)
    return y, np.clip(s, 0, 1)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [True, False])
def test_it_matches_sklearn_on_random_inputs(seed, ties):
    rng = np.random.default_rng(seed)
    y, s = random_case(rng, ties=ties)
    assert C.roc_auc_score(y, s) == pytest.approx(skm.roc_auc_score(y, s), abs=1e-12)
    assert C.average_precision_score(y, s) == pytest.approx(skm.average_precision_score(y, s), abs=1e-12)
    assert C.log_loss(y, s) == pytest.approx(skm.log_loss(y, s), abs=1e-10)
    pred = (s >= 0.5).astype(int)
    sens, spec = C.sensitivity_specificity(y, s, threshold=0.5)
    assert sens == pytest.approx(skm.recall_score(y, pred))
    assert spec == pytest.approx(skm.recall_score(1 - y, 1 - pred))


def test_average_precision_known_value():
    y = [0, 1, 0, 1, 1, 0]
    s = [0.1, 0.4, 0.35, 0.8, 0.35, 0.9]
    assert C.average_precision_score(y, s) == pytest.approx(0.588889, abs=1e-6)


def test_auc_fixed_values():
    assert C.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert C.roc_auc_score([0, 1], [0.5, 0.5]) == pytest.approx(0.5)


def test_two_dimensional_input_gives_one_value_per_label(rng):
    Y = rng.integers(0, 2, (200, 3))
    S = rng.random((200, 3))
    got = C.roc_auc_score(Y, S)
    assert got.shape == (3,)
    for j in range(3):
        assert got[j] == pytest.approx(skm.roc_auc_score(Y[:, j], S[:, j]))


def test_delong_variance_on_hand_made_data():
    # X = [.9, .4], Y = [.5, .1]: placements V10 = [1, .5], V01 = [.5, 1]; Var = .125/2 + .125/2
    auc, lo, hi = C.auc_confidence_interval([1, 1, 0, 0], [0.9, 0.4, 0.5, 0.1])
    assert auc == pytest.approx(0.75)
    assert lo == pytest.approx(0.75 - 1.959963984540054 * math.sqrt(0.125))
    assert hi == 1.0  # clipped, as pROC


@pytest.mark.parametrize("seed", range(6))
def test_delong_matches_the_quadratic_implementation(seed):
    rng = np.random.default_rng(seed)
    y, s = random_case(rng, n=250, ties=seed % 2 == 0)
    A, var = delong_reference(y, s)
    auc, lo, hi = C.auc_confidence_interval(y, s)
    assert auc == pytest.approx(A, abs=1e-12)
    z = 1.959963984540054
    assert lo == pytest.approx(max(0, A - z * math.sqrt(var)), abs=1e-10)
    assert hi == pytest.approx(min(1, A + z * math.sqrt(var)), abs=1e-10)


@pytest.mark.parametrize("seed", range(6))
def test_paired_delong_test_matches_the_quadratic_implementation(seed):
    rng = np.random.default_rng(seed)
    y, a = random_case(rng, n=200, ties=seed % 2 == 0)
    b = np.clip(a + rng.normal(0, 0.2, len(a)), 0, 1)
    A, va, B, vb, cov = delong_reference(y, a, b)
    z, p = C.delong_test(y, a, b)
    zr = (A - B) / math.sqrt(va + vb - 2 * cov)
    assert z == pytest.approx(zr, abs=1e-9)
    assert p == pytest.approx(math.erfc(abs(zr) / math.sqrt(2)), abs=1e-10)
    z2, p2 = C.delong_test(y, b, a)
    assert z2 == pytest.approx(-z) and p2 == pytest.approx(p)


def test_identical_curves_give_z_0_and_p_1():
    y = [0, 1, 0, 1, 1, 0]
    s = [0.1, 0.4, 0.35, 0.8, 0.35, 0.9]
    assert C.delong_test(y, s, s) == (0.0, 1.0)


def test_operating_point_matches_roc_curve(rng):
    y, s = random_case(rng, n=400)
    for target in (0.5, 0.8, 0.95, 1.0):
        fpr, tpr, thr = skm.roc_curve(y, s, drop_intermediate=False)
        i = int(np.argmax(tpr >= target))
        t, sens, spec = C.operating_point(y, s, target_sensitivity=target)
        assert (t, sens, spec) == pytest.approx((thr[i], tpr[i], 1 - fpr[i]))


def test_threshold_rule_is_greater_or_equal():
    sens, spec = C.sensitivity_specificity([1, 0], [0.5, 0.5], threshold=0.5)
    assert (sens, spec) == (1.0, 0.0)


def test_weighted_log_loss_equals_sklearn_with_sample_weight(rng):
    Y = rng.integers(0, 2, (100, 6))
    P = rng.random((100, 6))
    w = np.array([2, 1, 1, 1, 1, 1.0])
    want = skm.log_loss(Y.ravel(), P.ravel(), sample_weight=np.tile(w, 100))
    assert C.log_loss(Y, P, weights=w) == pytest.approx(want, abs=1e-10)


def test_log_loss_clips_with_float64_eps():
    eps = np.finfo(np.float64).eps
    assert C.log_loss([1, 0], [0.0, 1.0]) == pytest.approx(-math.log(eps))


def test_one_class_is_nan_with_a_warning():
    with pytest.warns(C.UndefinedMetricWarning):
        assert math.isnan(C.roc_auc_score([1, 1, 1], [0.1, 0.2, 0.3]))
    with pytest.warns(C.UndefinedMetricWarning):
        _, lo, hi = C.auc_confidence_interval([1, 0, 0], [0.1, 0.2, 0.3])
    assert math.isnan(lo) and math.isnan(hi)


@pytest.mark.parametrize("bad, match", [
    (([0, 1, 2], [0.1, 0.2, 0.3]), "only 0 and 1"),
    (([0, 1], [0.1, 0.2, 0.3]), "different shapes"),
    (([0, 1], [0.1, float("nan")]), "NaN"),
    (([], []), "empty"),
])
def test_it_names_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        C.roc_auc_score(*bad)


def test_log_loss_refuses_probabilities_outside_0_1():
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        C.log_loss([0, 1], [0.5, 1.5])
