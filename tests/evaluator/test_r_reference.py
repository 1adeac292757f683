"""The statistics against R: pROC (DeLong), boot (percentile bootstrap), base R (Wilcoxon, Holm)
and challengeR's rank-then-aggregate rule written out in R.

``fixtures/r_reference.R`` drew the data (``fixtures/r_inputs.json``) and wrote R's answers
(``fixtures/r_reference.json``); both are committed, so these tests run without R. When
``Rscript`` with pROC and boot is installed (``scripts/services.sh`` installs it), the first
test runs the script again and checks R still gives the committed answers.
"""

import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

import evaluator
from evaluator import classification as C, statistics as S

FIXTURES = Path(__file__).parent / "fixtures"
INPUTS = json.loads((FIXTURES / "r_inputs.json").read_text())
R = json.loads((FIXTURES / "r_reference.json").read_text())


def matrix(rows):
    return np.array([[np.nan if v is None else v for v in row] for row in rows], dtype=np.float64)


def r_available():
    if shutil.which("Rscript") is None:
        return False
    check = subprocess.run(["Rscript", "-e", "library(pROC); library(boot)"], capture_output=True)
    return check.returncode == 0


@pytest.mark.skipif(not r_available(), reason="Rscript with pROC and boot is not installed (scripts/services.sh)")
def test_r_still_gives_the_committed_answers(tmp_path):
    subprocess.run(["Rscript", str(FIXTURES / "r_reference.R"), str(tmp_path)], check=True, capture_output=True)
    assert json.loads((tmp_path / "r_inputs.json").read_text()) == INPUTS
    fresh = json.loads((tmp_path / "r_reference.json").read_text())
    for key, value in R.items():
        if key in ("r_version", "pROC"):
            continue
        assert np.asarray(fresh[key], dtype=float) == pytest.approx(np.asarray(value, dtype=float), rel=1e-12,
                                                                    nan_ok=True), key


def test_delong_interval_and_paired_test_match_pROC():
    y = np.array(INPUTS["y"])
    for k, key in ((0, "s1"), (1, "s2")):
        auc, low, high = C.auc_confidence_interval(y, np.array(INPUTS[key]))
        assert auc == pytest.approx(R["auc"][k], abs=1e-12)
        assert (low, high) == pytest.approx(tuple(R[f"delong_ci_{k + 1}"]), abs=1e-12)
    z, p = C.delong_test(y, np.array(INPUTS["s1"]), np.array(INPUTS["s2"]))
    assert z == pytest.approx(R["delong_paired_z"][0], rel=1e-9)
    assert p == pytest.approx(R["delong_paired_p"][0], rel=1e-9)


def stored_classification(scores):
    rows = [{"case_id": f"c{i}", "missing": False, "label": int(l), "score": float(s)}
            for i, (l, s) in enumerate(zip(INPUTS["y"], scores))]
    return {"task": "classification", "metrics": {}, "per_case": rows}


def test_compare_uses_pROCs_one_sided_paired_delong():
    results = {"one": stored_classification(INPUTS["s1"]), "two": stored_classification(INPUTS["s2"])}
    out = evaluator.compare("classification", results, metric="auc", higher_is_better=True, method="significance",
                            n_resamples=10)
    p = dict(zip(out["names"], out["pairwise"]["p_values"]))
    # two ordered pairs, Holm: the smaller p doubled
    assert p["one"][out["names"].index("two")] == pytest.approx(2 * R["delong_paired_p_greater"][0], rel=1e-9)


def test_wilcoxon_holm_and_significance_ranks_match_R():
    X = matrix(INPUTS["X"])
    raw = S.pairwise_wilcoxon(X, higher_is_better=True)
    for (i, j), want in zip(R["wilcoxon_pairs"], R["wilcoxon_raw"]):
        assert raw[i, j] == pytest.approx(want, rel=1e-9)
    out = S.significance_ranking(X, higher_is_better=True)
    assert out["p_values"] == pytest.approx(matrix(R["holm_p"]), rel=1e-9)
    assert out["ranks"].tolist() == R["significance_ranks"]
    stored = {f"team{k}": {"per_case": [{"case_id": f"c{c}", "dice": None if math.isnan(v) else v}
                                        for c, v in enumerate(row)]} for k, row in enumerate(X)}
    got = evaluator.compare("segmentation", stored, metric="dice", higher_is_better=True, method="significance",
                            n_resamples=10)
    assert dict(zip(got["names"], got["ranks"])) == {f"team{k}": r for k, r in enumerate(R["significance_ranks"])}


@pytest.mark.parametrize("ties", ["min", "average", "max"])
def test_rank_then_aggregate_with_missing_values_matches_challengeRs_rule(ties):
    ranks, mean_rank = S.rank_then_aggregate(matrix(INPUTS["X"]), higher_is_better=True, ties=ties)
    assert mean_rank == pytest.approx(R[f"rta_mean_rank_{ties}"], rel=1e-12)
    assert ranks.tolist() == R[f"rta_ranks_{ties}"]


def test_percentile_interval_against_boot():
    v = np.array(INPUTS["v"])
    idx = np.array(INPUTS["idx"], dtype=int) - 1
    reps = v[idx].mean(1)
    ours = tuple(float(q) for q in S._percentile(torch.as_tensor(reps), 0.05))
    # Mica's percentile is R's quantile type 7 (linear interpolation, numpy's default) ...
    assert ours == pytest.approx(tuple(R["quantile_type7"]), abs=1e-12)
    # ... boot.ci(type="perc") interpolates order statistics (R + 1)·α on the normal scale:
    # on the same replicates it lands within one order statistic of ours
    srt = np.sort(reps)
    for q, theirs, mine in zip((0.025, 0.975), R["boot_perc"], ours):
        k = int((len(reps) + 1) * q) - 1
        assert srt[k - 1] <= theirs <= srt[k + 1] and abs(theirs - mine) <= srt[k + 1] - srt[k - 1]
