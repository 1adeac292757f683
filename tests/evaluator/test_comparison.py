"""evaluator.compare: rankings, paired tests, bands, stability, from stored (JSON) results."""

import json

import numpy as np
import pytest
from scipy import stats

import evaluator
from evaluator import statistics as S


def stored(values, key="dice", ids=None):
    """What the site stores for a team: a JSON round-trip of score's result, per-case rows only."""
    ids = ids or [f"c{i}" for i in range(len(values))]
    rows = [{"case_id": c, "missing": False, key: None if v is None or np.isnan(v) else float(v)}
            for c, v in zip(ids, values)]
    return json.loads(json.dumps({"task": "segmentation", "metrics": {}, "per_case": rows}))


@pytest.fixture
def teams(rng):
    base = rng.random(40)
    values = {"A": base + 0.2, "B": base + 0.1, "C": base + rng.normal(0, 0.05, 40), "D": base}
    return values, {k: stored(v) for k, v in values.items()}


def test_significance_ranking_and_pairwise_holm_wilcoxon(teams):
    values, results = teams
    out = evaluator.compare("segmentation", results, metric="dice", higher_is_better=True, method="significance",
                            n_resamples=50)
    json.dumps(out, allow_nan=False)
    names = out["names"]
    raw = {}
    for i in names:
        for j in names:
            if i != j:
                raw[i, j] = stats.wilcoxon(values[i] - values[j], zero_method="wilcox", correction=True,
                                           method="asymptotic", alternative="greater").pvalue
    adj = dict(zip(raw, S.holm(list(raw.values()))))
    p = out["pairwise"]["p_values"]
    for (i, j), q in adj.items():
        assert p[names.index(i)][names.index(j)] == pytest.approx(q, rel=1e-9)
        assert out["pairwise"]["significant"][names.index(i)][names.index(j)] == (q <= 0.05)
    wins = [sum(adj.get((i, j), 1) <= 0.05 for j in names) for i in names]
    assert out["values"] == pytest.approx([w / 3 for w in wins])
    assert names[0] == "A" and out["ranks"][0] == 1 and out["pairwise"]["test"] == "wilcoxon"


def test_bands_break_where_the_team_above_is_significantly_better(teams):
    _, results = teams
    out = evaluator.compare("segmentation", results, metric="dice", higher_is_better=True, method="mean",
                            n_resamples=20)
    assert out["names"] == ["A", "B", "C", "D"] or out["names"][:2] == ["A", "B"]
    sig = out["pairwise"]["significant"]
    expected, band = [0], 0
    for q in range(1, 4):
        band += bool(sig[q - 1][q])
        expected.append(band)
    assert out["bands"] == expected and out["bands"][1] == 1  # A is better than B on every case


def test_rank_then_aggregate_follows_challengeR_with_missing_values():
    # teams × 2 cases, higher better; B and C have no value on case 2
    v = {"A": [0.9, 0.9], "B": [0.8, np.nan], "C": [0.7, np.nan], "D": [0.6, 0.5]}
    out = evaluator.compare("segmentation", {k: stored(x) for k, x in v.items()}, metric="dice",
                            higher_is_better=True, method="rank_then_aggregate", n_resamples=20)
    assert dict(zip(out["names"], out["ranks"])) == {"A": 1, "B": 2, "C": 3, "D": 3}
    assert dict(zip(out["names"], out["values"])) == {"A": 1.0, "B": 2.5, "C": 3.0, "D": 3.0}
    ranks, _ = S.rank_then_aggregate(np.array(list(v.values())), higher_is_better=True, ties="max")
    assert ranks.tolist() == [1, 2, 4, 4]


def test_a_case_missing_from_a_result_is_a_failure():
    ids = ["a", "b", "c"]
    results = {"full": stored([0.5, 0.5, 0.5], ids=ids), "partial": stored([0.9, 0.9], ids=ids[:2])}
    out = evaluator.compare("segmentation", results, metric="dice", higher_is_better=True, method="mean",
                            n_resamples=20)
    assert dict(zip(out["names"], out["values"])) == pytest.approx({"full": 0.5, "partial": 0.6})
    hd = {"full": stored([3.0, 4.0, 5.0], "hd95", ids), "partial": stored([1.0, 1.0], "hd95", ids[:2])}
    out = evaluator.compare("segmentation", hd, metric="hd95", higher_is_better=False, method="mean", n_resamples=20)
    # no fixed failure value for HD95: the worst any result has for the case
    assert dict(zip(out["names"], out["values"])) == pytest.approx({"full": 4.0, "partial": 7 / 3})


def test_stability_reapplies_the_method_and_robustness_lists_every_method(teams):
    values, results = teams
    x = np.array(list(values.values()))
    for method in S.RANKING_METHODS:
        out = evaluator.compare("segmentation", results, metric="dice", higher_is_better=True, method=method,
                                ties="average", n_resamples=30, seed=3)
        W = S.resample_weights(40, 30, 3).numpy().astype(int)
        boot = []
        for w in W:
            i = np.repeat(np.arange(40), w)
            boot.append(S.rank_by(x[:, i], method, higher_is_better=True, ties="average")[0])
        boot = np.array(boot).T
        order = [list(values).index(n) for n in out["names"]]
        counts = np.array([np.bincount(np.floor(boot[t]).astype(int) - 1, minlength=4) for t in order])
        assert out["stability"]["rank_counts"] == counts.tolist(), method
        full = S.rank_by(x, method, higher_is_better=True, ties="average")[0]
        taus = [stats.kendalltau(full, boot[:, r]).statistic for r in range(30)]
        assert out["stability"]["kendall_tau"]["median"] == pytest.approx(np.nanmedian(taus))
        assert set(out["robustness"]) == set(S.RANKING_METHODS)
        assert out["robustness"][method] == out["ranks"]


def test_a_time_budget_cuts_only_the_significance_rankings_samples(teams):
    # Every sample of a significance ranking tests every pair again: under max_seconds, as many
    # samples as fit (here none: the floor of 20), and the resamples' first 20 are the ones drawn.
    _, results = teams
    args = dict(metric="dice", higher_is_better=True, n_resamples=60, seed=3)
    cut = evaluator.compare("segmentation", results, method="significance", max_seconds=1e-12, **args)
    whole = evaluator.compare("segmentation", results, method="significance", max_seconds=1e6, **args)
    assert cut["stability"]["n_resamples"] == evaluator.comparison.MIN_SIGNIFICANCE_RESAMPLES == 20
    assert sum(cut["stability"]["rank_counts"][0]) == 20 and whole["stability"]["n_resamples"] == 60
    assert (cut["ranks"], cut["pairwise"]) == (whole["ranks"], whole["pairwise"])  # only the stability differs
    mean = evaluator.compare("segmentation", results, method="mean", max_seconds=1e-12, **args)
    assert mean["stability"]["n_resamples"] == 60


def test_auc_from_stored_labels_and_scores_with_delong(write, rng):
    n = 120
    y = rng.integers(0, 2, n)
    truth = write("t.csv", "case_id,label\n" + "".join(f"c{i},{y[i]}\n" for i in range(n)))
    scores, results = [], {}
    for t, shift in enumerate([0.35, 0.3, 0.0]):
        s = np.clip(rng.random(n) * 0.7 + shift * y, 0, 1).round(3)
        scores.append(s)
        pred = write(f"p{t}.csv", "case_id,score\n" + "".join(f"c{i},{s[i]}\n" for i in range(n)))
        results[f"t{t}"] = json.loads(json.dumps(evaluator.score("classification", truth, pred, n_resamples=10)))
    out = evaluator.compare("classification", results, metric="auc", higher_is_better=True, method="significance",
                            n_resamples=20)
    assert out["pairwise"]["test"] == "delong"
    auc, z, _ = S.pairwise_delong_test(y, np.array(scores))
    one_sided = stats.norm.sf(z)
    off = ~np.eye(3, dtype=bool)
    expected = np.ones((3, 3))
    expected[off] = S.holm(one_sided[off])
    order = [int(name[1]) for name in out["names"]]
    assert np.array(out["pairwise"]["p_values"]) == pytest.approx(expected[np.ix_(order, order)], rel=1e-9)
    mean = evaluator.compare("classification", results, metric="auc", higher_is_better=True, method="mean",
                             n_resamples=20)
    assert mean["values"] == pytest.approx(sorted(auc, reverse=True))
    assert set(mean["robustness"]) == {"mean", "significance"}
    with pytest.raises(ValueError, match="needs per-case values"):
        evaluator.compare("classification", results, metric="auc", higher_is_better=True, method="median")


def test_ties_follow_R():
    v = {"A": [0.5, 0.5], "B": [0.5, 0.5], "C": [0.1, 0.1]}
    res = {k: stored(x) for k, x in v.items()}
    got = {t: evaluator.compare("segmentation", res, metric="dice", higher_is_better=True, method="mean", ties=t,
                                n_resamples=5)["ranks"] for t in S.TIES}
    assert got == {"min": [1, 1, 3], "average": [1.5, 1.5, 3.0], "max": [2, 2, 3]}


def test_patient_groups_resample_whole_patients(teams):
    _, results = teams
    groups = {f"c{i}": f"p{i // 4}" for i in range(40)}
    a = evaluator.compare("segmentation", results, metric="dice", higher_is_better=True, method="mean",
                          n_resamples=30, groups=groups)
    assert sum(a["stability"]["rank_counts"][0]) == 30
    with pytest.raises(ValueError, match="groups gives no patient for 1 of the 40 cases"):
        evaluator.compare("segmentation", results, metric="dice", higher_is_better=True, method="mean",
                          groups={k: v for k, v in groups.items() if k != "c0"})


def test_bad_calls_name_what_is_wrong(teams):
    _, results = teams
    kw = {"metric": "dice", "higher_is_better": True}
    with pytest.raises(ValueError, match="method must be one of"):
        evaluator.compare("segmentation", results, method="best", **kw)
    with pytest.raises(ValueError, match="ties must be one of"):
        evaluator.compare("segmentation", results, method="mean", ties="first", **kw)
    with pytest.raises(ValueError, match="no per-case values"):
        evaluator.compare("segmentation", results, method="mean", metric="sensitivity", higher_is_better=True)
    with pytest.raises(ValueError, match="result 'x' is not what evaluator.score returned"):
        evaluator.compare("segmentation", {"x": {"metrics": {}}}, method="mean", **kw)
    bad = json.loads(json.dumps(results["A"]))
    bad["per_case"][2]["dice"] = "0.5"
    with pytest.raises(ValueError, match="result 'bad', case row 3, 'dice': expected a number"):
        evaluator.compare("segmentation", {"bad": bad, "A": results["A"]}, method="mean", **kw)
    with pytest.raises(ValueError, match="non-empty"):
        evaluator.compare("segmentation", {}, method="mean", **kw)


def test_detection_images_with_nothing_to_find_count_as_right_case_by_case():
    # image c2 has no truth: "quiet" predicted nothing (null), "noisy" predicted a box (0)
    results = {"quiet": stored([0.5, 0.5, None], "map"), "noisy": stored([0.5, 0.5, 0.0], "map")}
    kw = {"metric": "map", "higher_is_better": True, "n_resamples": 10}
    mean = evaluator.compare("detection", results, method="mean", **kw)
    assert dict(zip(mean["names"], mean["values"])) == {"quiet": 0.5, "noisy": 1 / 3}
    rta = evaluator.compare("detection", results, method="rank_then_aggregate", **kw)
    assert rta["names"] == ["quiet", "noisy"] and rta["ranks"] == [1, 2]


def test_one_team_is_ranked_alone():
    out = evaluator.compare("segmentation", {"only": stored([0.3, 0.4])}, metric="dice", higher_is_better=True,
                            method="significance", n_resamples=10)
    assert out["names"] == ["only"] and out["ranks"] == [1] and out["bands"] == [0]
    assert out["stability"]["rank_counts"] == [[10]] and out["stability"]["kendall_tau"]["median"] is None
    json.dumps(out, allow_nan=False)
