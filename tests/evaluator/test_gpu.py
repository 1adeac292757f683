"""The CUDA path gives the CPU path's numbers (skipped without a CUDA device)."""

import numpy as np
import pytest
import torch

from evaluator import classification as C, detection as D, segmentation as S, statistics as St

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def test_classification_on_cuda_matches_cpu(rng):
    y = rng.integers(0, 2, (5000, 3))
    s = np.round(rng.random((5000, 3)), 3)
    for f in (C.roc_auc_score, C.average_precision_score, C.log_loss):
        np.testing.assert_allclose(f(y, s, device="cuda"), f(y, s, device="cpu"), rtol=0, atol=1e-12)
    np.testing.assert_allclose(C.auc_confidence_interval(y, s, device="cuda"),
                               C.auc_confidence_interval(y, s, device="cpu"), atol=1e-12)
    assert C.delong_test(y[:, 0], s[:, 0], s[:, 1], device="cuda") == pytest.approx(
        C.delong_test(y[:, 0], s[:, 0], s[:, 1], device="cpu"), abs=1e-12)


def test_statistics_on_cuda_match_cpu(rng):
    x = rng.random((5, 2000))
    np.testing.assert_allclose(St.bootstrap_ci(x, device="cuda"), St.bootstrap_ci(x, device="cpu"), atol=1e-12)
    y = rng.integers(0, 2, 2000)
    np.testing.assert_allclose(St.bootstrap_auc_ci(y, x, device="cuda"), St.bootstrap_auc_ci(y, x, device="cpu"),
                               atol=1e-12)


def test_detection_on_cuda_matches_cpu(rng):
    truth = [np.c_[rng.uniform(0, 500, (k, 2)), rng.uniform(20, 200, (k, 2))] for k in rng.integers(0, 4, 500)]
    preds = [np.c_[rng.random(len(t)), t + rng.normal(0, 10, t.shape).clip(-5)] for t in truth]
    assert D.rsna_map(truth, preds, device="cuda") == pytest.approx(D.rsna_map(truth, preds, device="cpu"), abs=1e-12)


def test_segmentation_on_cuda_matches_cpu(rng):
    from scipy import ndimage

    t = ndimage.gaussian_filter(rng.random((64, 60, 40)), 3) > 0.5
    p = ndimage.gaussian_filter(rng.random((64, 60, 40)), 3) > 0.5
    sp = (0.8, 0.8, 2.5)
    cpu = S.case_metrics(t, p, sp, tolerance=2.0, device="cpu")
    gpu = S.case_metrics(t, p, sp, tolerance=2.0, device="cuda")
    for k in cpu:
        assert gpu[k] == pytest.approx(cpu[k], abs=1e-9), k


def test_intervals_and_rankings_on_cuda_match_cpu(rng, tmp_path):
    from evaluator.intervals import metric_intervals
    from evaluator.tasks import classification as task

    n = 3000
    y = rng.integers(0, 2, n)
    s = np.round(np.clip(rng.random(n) * 0.8 + 0.2 * y, 0, 1), 3)
    (tmp_path / "t.csv").write_text("case_id,label\n" + "".join(f"c{i},{y[i]}\n" for i in range(n)))
    (tmp_path / "p.csv").write_text("case_id,score\n" + "".join(f"c{i},{s[i]}\n" for i in range(n)))
    raw = task.score(tmp_path / "t.csv", tmp_path / "p.csv", {"target_sensitivity": 0.9})
    plan = raw.pop("_intervals")
    cpu = metric_intervals(raw, plan, n_resamples=300, device="cpu")
    gpu = metric_intervals(raw, plan, n_resamples=300, device="cuda")
    for k, v in cpu.items():
        assert (gpu[k]["low"], gpu[k]["high"]) == pytest.approx((v["low"], v["high"]), abs=1e-9), k
    x = rng.random((6, 400))
    for method in St.RANKING_METHODS:
        a = St.rank_stability(x, higher_is_better=True, method=method, n_resamples=30, device="cpu")
        b = St.rank_stability(x, higher_is_better=True, method=method, n_resamples=30, device="cuda")
        assert (a["bootstrap_ranks"] == b["bootstrap_ranks"]).all(), method
    d = np.round(rng.normal(0.1, 1, (7, 200)), 1)
    np.testing.assert_allclose(St.wilcoxon_greater(d, device="cuda"), St.wilcoxon_greater(d, device="cpu"),
                               rtol=1e-12)


def test_froc_replicates_on_cuda_match_cpu(rng):
    truth = [rng.random((k, 4)) * 50 for k in rng.integers(0, 3, 200)]
    preds = [np.c_[rng.random(k).round(2), rng.random((k, 4)) * 50] for k in rng.integers(0, 5, 200)]
    events = D.froc_events(truth, preds)
    W = St.resample_weights(200, 50, 0)
    for rule in D.FROC_RULES:
        np.testing.assert_allclose(D.froc_scores_weighted(events, W.cuda(), D.FROC_FP_RATES, rule, "cuda").cpu(),
                                   D.froc_scores_weighted(events, W, D.FROC_FP_RATES, rule, "cpu"), atol=1e-12)
