"""Bootstrap intervals against numpy loops, DeLong matrices, rankings against hand-made data."""

import numpy as np
import torch
import pytest
from scipy import stats
from sklearn.metrics import average_precision_score, roc_auc_score

from evaluator import classification as C, statistics as S


def test_bootstrap_ci_equals_a_numpy_loop_over_the_same_resamples(rng):
    x = rng.random((3, 150))
    lo, hi = S.bootstrap_ci(x, n_resamples=300, seed=7)
    idx = S.bootstrap_indices(150, 300, 7).numpy()
    for t in range(3):
        reps = np.array([x[t, i].mean() for i in idx])
        assert (lo[t], hi[t]) == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975])), abs=1e-12)


def test_bootstrap_is_seeded(rng):
    x = rng.random(100)
    assert S.bootstrap_ci(x, seed=1) == S.bootstrap_ci(x, seed=1)
    assert S.bootstrap_ci(x, seed=1) != S.bootstrap_ci(x, seed=2)


def test_bootstrap_of_a_constant_is_the_constant():
    assert S.bootstrap_ci(np.full(50, 0.7)) == pytest.approx((0.7, 0.7))


def test_bootstrap_resamples_whole_groups(rng):
    x = rng.random(60)
    groups = np.repeat(np.arange(20), 3)
    lo, hi = S.bootstrap_ci(x, groups=groups, n_resamples=200, seed=3)
    idx = S.bootstrap_indices(20, 200, 3).numpy()
    reps = [np.concatenate([x[groups == g] for g in row]).mean() for row in idx]
    assert (lo, hi) == pytest.approx(tuple(np.quantile(reps, [0.025, 0.975])), abs=1e-12)


def test_percentile_interval_agrees_with_scipy_percentile_method(rng):
    # not the same resamples, so only roughly the same interval
    x = rng.normal(size=400)
    lo, hi = S.bootstrap_ci(x, n_resamples=2000)
    ref = stats.bootstrap((x,), np.mean, n_resamples=2000, method="percentile", random_state=0).confidence_interval
    assert lo == pytest.approx(ref.low, abs=0.02) and hi == pytest.approx(ref.high, abs=0.02)


def test_stratified_auc_bootstrap_matches_a_loop_with_sklearn(rng):
    y = rng.integers(0, 2, 120)
    s = np.round(rng.random((2, 120)) + 0.3 * y, 1)
    lo, hi, reps = S.bootstrap_auc_ci(y, s, n_resamples=100, seed=5, return_replicates=True)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    ip = pos[S.bootstrap_indices(len(pos), 100, 5).numpy()]
    ineg = neg[S.bootstrap_indices(len(neg), 100, 6).numpy()]
    for r in range(100):
        i = np.concatenate([ip[r], ineg[r]])
        for t in range(2):
            assert reps[t, r] == pytest.approx(roc_auc_score(y[i], s[t, i]), abs=1e-12)
    assert lo[0] == pytest.approx(np.quantile(reps[0], 0.025))


@pytest.mark.parametrize("target", [0.3, 0.8, 1.0])
def test_weighted_binary_metrics_equal_each_resample_scored_on_its_own(rng, monkeypatch, target):
    # heavy ties, the highest scores all negative (the first tie group has no positive), and
    # chunks of 7 rows, so every replicate's metrics come from the group reads of its own chunk
    monkeypatch.setitem(S._BINARY_CHUNK_NUMBERS, "cpu", 7 * 90)
    y = rng.integers(0, 2, 90)
    s = np.round(rng.random(90) * 0.8 + 0.2 * y, 1)
    s[np.flatnonzero(y == 0)[:3]] = 1.5
    W = S.resample_weights(90, 40, 3, strata=y)
    got = S.weighted_binary_metrics(y, s, W, threshold=0.6, target_sensitivity=target)
    for r, w in enumerate(W.numpy().astype(int)):
        i = np.repeat(np.arange(90), w)
        want = {"auc": roc_auc_score(y[i], s[i]), "average_precision": average_precision_score(y[i], s[i]),
                "sensitivity": (s[i] >= 0.6)[y[i] == 1].mean(), "specificity": (s[i] < 0.6)[y[i] == 0].mean()}
        want.update(zip(("operating_threshold", "operating_sensitivity", "operating_specificity"),
                        C.operating_point(y[i], s[i], target_sensitivity=target)))
        for k, v in want.items():
            assert float(got[k][r]) == pytest.approx(v, abs=1e-12), (k, r)


@pytest.mark.parametrize("chunk", [7 * 90, 2 ** 19])
def test_weighted_aucs_of_many_teams_equal_each_resample_scored_on_its_own(rng, monkeypatch, chunk):
    # Heavy ties within a team and between positives and negatives, a team whose top scores are
    # all negatives, and chunks of 7 resamples: scikit-learn's AUC of each resample repeated out.
    monkeypatch.setitem(S._AUC_CHUNK_NUMBERS, "cpu", chunk)
    y = rng.integers(0, 2, 90)
    scores = np.round(rng.random((5, 90)) * 0.8 + 0.2 * y, 1)
    scores[2, np.flatnonzero(y == 0)[:3]] = 1.5
    W = S.resample_weights(90, 40, 3, strata=y)
    got = S.weighted_aucs(y, scores, W)
    assert got.shape == (5, 40) and got.dtype == torch.float64
    for r, w in enumerate(W.numpy().astype(int)):
        i = np.repeat(np.arange(90), w)
        for t in range(5):
            assert float(got[t, r]) == pytest.approx(roc_auc_score(y[i], scores[t, i]), abs=1e-12), (t, r)
    # the same numbers, to the last bit, as the all-metrics pass (it ranks the teams: ties stay ties)
    for t in range(5):
        assert torch.equal(got[t], S.weighted_binary_metrics(y, scores[t], W)["auc"])


def test_weighted_aucs_with_fractional_or_large_weights_sum_in_float64(rng):
    # Fractional weights, and integer weights whose sums pass int32: scikit-learn's sample_weight.
    y = rng.integers(0, 2, 60)
    scores = np.round(rng.random((3, 60)) + 0.3 * y, 2)
    W = np.stack([rng.random(60) * 3, np.full(60, 5.0e4), rng.integers(0, 4, 60).astype(float)])
    got = S.weighted_aucs(y, scores, W)
    for r in range(3):
        for t in range(3):
            assert float(got[t, r]) == pytest.approx(roc_auc_score(y, scores[t], sample_weight=W[r]), abs=1e-12)


def test_weighted_aucs_are_nan_without_both_classes_and_refuse_nan_scores(rng):
    y = np.array([1, 1, 0, 0])
    W = np.array([[1, 1, 0, 0], [0, 0, 2, 1], [1, 0, 1, 0]])
    got = S.weighted_aucs(y, np.array([[0.9, 0.8, 0.1, 0.2]]), W)
    assert torch.isnan(got[0, :2]).all() and float(got[0, 2]) == 1.0
    with pytest.raises(ValueError, match="NaN"):
        S.weighted_aucs(y, np.array([[0.9, np.nan, 0.1, 0.2]]), W)


def test_generic_bootstrap_uses_the_same_resamples(rng):
    x = rng.random(80)
    assert S.bootstrap_metric_ci(np.mean, x, n_resamples=200) == pytest.approx(S.bootstrap_ci(x, n_resamples=200))


def test_pairwise_delong_matches_the_pairwise_function(rng):
    y = rng.integers(0, 2, 200)
    s = np.clip(rng.random((4, 200)) * 0.8 + 0.2 * y, 0, 1)
    auc, z, p = S.pairwise_delong_test(y, s)
    for i in range(4):
        assert auc[i] == pytest.approx(roc_auc_score(y, s[i]))
        for j in range(4):
            zz, pp = C.delong_test(y, s[i], s[j])
            assert z[i, j] == pytest.approx(zz, abs=1e-9) and p[i, j] == pytest.approx(pp, abs=1e-9)


def test_holm_matches_hand_computation():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted 0.005, 0.01, 0.03, 0.04 -> 0.02, 0.03, 0.06, 0.06 (monotone)
    assert S.holm(p).tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_aggregate_then_rank_shares_the_best_rank():
    v = np.array([[0.9, 0.8], [0.7, 0.6], [0.9, 0.8]])
    ranks, agg = S.rank_aggregate_then_rank(v, higher_is_better=True)
    assert ranks.tolist() == [1, 3, 1]
    ranks, _ = S.rank_aggregate_then_rank(v, higher_is_better=False)
    assert ranks.tolist() == [2, 1, 2]
    ranks, agg = S.rank_aggregate_then_rank(v, higher_is_better=True, aggregate="median")
    assert agg.tolist() == pytest.approx([0.85, 0.65, 0.85])


def test_rank_then_aggregate_gives_a_missing_value_the_worst_observed_rank_plus_one():
    v = np.array([[0.9, 0.1, np.nan], [0.5, 0.5, 0.5], [0.1, 0.9, 0.9]])
    ranks, mean_rank = S.rank_then_aggregate(v, higher_is_better=True)
    # case ranks: team0 [1, 3, 3 (missing: worst observed 2, + 1)], team1 [2, 2, 2], team2 [3, 1, 1]
    assert mean_rank.tolist() == pytest.approx([7 / 3, 2, 5 / 3])
    assert ranks.tolist() == [3, 2, 1]


def test_significance_ranking_uses_one_sided_wilcoxon_with_holm(rng):
    base = rng.random(60)
    v = np.vstack([base + 0.2, base + 0.1, base, base + rng.normal(0, 0.001, 60)])
    out = S.significance_ranking(v, higher_is_better=True)
    raw = {}
    for i in range(4):
        for j in range(4):
            if i != j:
                d = v[i] - v[j]
                raw[i, j] = stats.wilcoxon(d, zero_method="wilcox", correction=True, method="asymptotic",
                                           alternative="greater").pvalue
    adj = dict(zip(raw, S.holm(list(raw.values()))))
    for (i, j), q in adj.items():
        assert out["p_values"][i, j] == pytest.approx(q)
    assert out["ranks"][0] == 1 and out["scores"][0] == 1.0
    assert out["ranks"][1] == 2


def test_rank_stability(rng):
    v = np.vstack([rng.random(200) + k * 0.05 for k in range(5)])
    out = S.rank_stability(v, higher_is_better=True, n_resamples=200)
    assert out["ranks"].tolist() == [5, 4, 3, 2, 1]
    assert out["bootstrap_ranks"].shape == (5, 200)
    assert out["rank_counts"].sum(1).tolist() == [200] * 5
    r = 17
    assert out["kendall_tau"][r] == pytest.approx(stats.kendalltau(out["ranks"], out["bootstrap_ranks"][:, r]).statistic)
    assert np.median(out["kendall_tau"]) > 0.5


def test_statistics_name_bad_input():
    with pytest.raises(ValueError, match="NaN"):
        S.bootstrap_ci([1.0, np.nan])
    with pytest.raises(ValueError, match="both classes"):
        S.bootstrap_auc_ci([1, 1], [0.2, 0.3])
    with pytest.raises(ValueError, match=r"\(teams, cases\)"):
        S.rank_aggregate_then_rank([1, 2, 3], higher_is_better=True)
