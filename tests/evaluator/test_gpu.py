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
