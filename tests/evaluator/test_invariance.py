"""Invariance checks run over every metric in the registry, as scikit-learn's test_common."""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import evaluator

METRICS = sorted(evaluator.METRICS.values(), key=lambda m: m.name)
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def by_kind(kind):
    return [pytest.param(m, id=m.name) for m in METRICS if m.kind == kind]


def value(m, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = m.function(*args)
    return out[0] if isinstance(out, tuple) else out


def test_every_metric_is_registered_with_a_known_kind():
    assert {m.kind for m in METRICS} == {"binary", "regression", "detection", "segmentation"}
    for m in METRICS:
        assert m.task in evaluator.TASKS and m.description and callable(m.function)
        # sklearn's naming: *_loss/*_error and distances are lower-is-better
        if m.name.endswith(("loss", "error")) or m.name in ("hd95", "mae", "rmse", "volume_difference"):
            assert not m.higher_is_better


# ----------------------------------------------------------------------------- strategies
@st.composite
def binary_data(draw):
    n = draw(st.integers(4, 40))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    y[0], y[1] = 0, 1
    s = np.array(draw(st.lists(st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0]), min_size=n, max_size=n)))
    perm = np.array(draw(st.permutations(range(n))))
    return y, s, perm


@st.composite
def regression_data(draw):
    n = draw(st.integers(1, 40))
    floats = st.floats(-1e3, 1e3, allow_nan=False)
    y = np.array(draw(st.lists(floats, min_size=n, max_size=n)))
    p = np.array(draw(st.lists(floats, min_size=n, max_size=n)))
    return y, p, np.array(draw(st.permutations(range(n))))


@st.composite
def detection_data(draw):
    n = draw(st.integers(1, 8))
    box = st.tuples(st.integers(0, 60), st.integers(0, 60), st.integers(1, 40), st.integers(1, 40))
    truth, preds = [], []
    for i in range(n):
        t = draw(st.lists(box, max_size=3))
        p = draw(st.lists(st.tuples(st.sampled_from([0.1, 0.5, 0.9]), *[st.integers(0, 60)] * 2,
                                    st.integers(1, 40), st.integers(1, 40)), max_size=3))
        truth.append(np.array(t, float).reshape(-1, 4))
        preds.append(np.array(p, float).reshape(-1, 5))
    truth[0] = np.array([[10.0, 10, 20, 20]])  # at least one lesion, for FROC
    return truth, preds, list(draw(st.permutations(range(n))))


@st.composite
def mask_pair(draw):
    shape = draw(st.sampled_from([(12, 10), (8, 9, 7)]))
    n = int(np.prod(shape))
    t = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))).reshape(shape)
    p = np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n))).reshape(shape)
    spacing = tuple(draw(st.sampled_from([0.5, 1.0, 2.0])) for _ in shape)
    return t, p, spacing


# ----------------------------------------------------------------------------- binary
@pytest.mark.parametrize("metric", by_kind("binary"))
@SETTINGS
@given(data=binary_data())
def test_binary_metrics_ignore_case_order_and_duplication(metric, data):
    y, s, perm = data
    v = value(metric, y, s)
    assert value(metric, y[perm], s[perm]) == pytest.approx(v, abs=1e-9, nan_ok=True)
    assert value(metric, np.tile(y, 2), np.tile(s, 2)) == pytest.approx(v, abs=1e-9, nan_ok=True)


@pytest.mark.parametrize("metric", by_kind("binary"))
def test_binary_metrics_give_their_best_value_to_a_perfect_prediction(metric):
    y = np.array([0, 1, 0, 1, 1, 0])
    best = value(metric, y, y.astype(float))
    assert best == pytest.approx(0.0 if not metric.higher_is_better else 1.0, abs=1e-12)


# ----------------------------------------------------------------------------- regression
@pytest.mark.parametrize("metric", by_kind("regression"))
@SETTINGS
@given(data=regression_data())
def test_regression_metrics_ignore_case_order_and_duplication(metric, data):
    y, p, perm = data
    v = value(metric, y, p)
    assert value(metric, y[perm], p[perm]) == pytest.approx(v, rel=1e-9, abs=1e-9)
    assert value(metric, np.tile(y, 2), np.tile(p, 2)) == pytest.approx(v, rel=1e-9, abs=1e-9)
    assert value(metric, y, y) == 0.0


# ----------------------------------------------------------------------------- detection
@pytest.mark.parametrize("metric", by_kind("detection"))
@SETTINGS
@given(data=detection_data())
def test_detection_metrics_ignore_image_order_and_duplication(metric, data):
    truth, preds, perm = data
    v = value(metric, truth, preds)
    assert value(metric, [truth[i] for i in perm], [preds[i] for i in perm]) == pytest.approx(v, abs=1e-12, nan_ok=True)
    assert value(metric, truth * 2, preds * 2) == pytest.approx(v, abs=1e-12, nan_ok=True)


@pytest.mark.parametrize("metric", by_kind("detection"))
def test_detection_metrics_give_1_to_a_perfect_prediction(metric):
    truth = [np.array([[10.0, 10, 20, 20]]), np.zeros((0, 4)), np.array([[0.0, 0, 5, 5], [30, 30, 5, 5]])]
    preds = [np.c_[np.full(len(t), 0.9), t] for t in truth]
    assert value(metric, truth, preds) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- segmentation
@pytest.mark.parametrize("metric", by_kind("segmentation"))
@SETTINGS
@given(data=mask_pair())
def test_segmentation_metrics_are_symmetric_and_ignore_flips_and_axis_order(metric, data):
    t, p, spacing = data
    v = value(metric, t, p, spacing)
    assert value(metric, p, t, spacing) == pytest.approx(v, abs=1e-9)
    assert value(metric, np.flip(t, 0), np.flip(p, 0), spacing) == pytest.approx(v, abs=1e-9)
    order = tuple(reversed(range(t.ndim)))
    assert value(metric, t.transpose(order), p.transpose(order), spacing[::-1]) == pytest.approx(v, abs=1e-9)


@pytest.mark.parametrize("metric", by_kind("segmentation"))
def test_segmentation_metrics_give_their_best_value_to_a_perfect_prediction(metric):
    t = np.zeros((10, 10, 6), bool)
    t[2:7, 3:8, 1:4] = True
    assert value(metric, t, t, (1.0, 1.0, 2.0)) == (1.0 if metric.higher_is_better else 0.0)
