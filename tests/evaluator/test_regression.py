import numpy as np
import pytest
from sklearn import metrics as skm

import evaluator
from evaluator import SubmissionInvalid, regression as R
from evaluator.statistics import bootstrap_metric_ci


@pytest.mark.parametrize("seed", range(3))
def test_it_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    y, p = rng.normal(100, 30, 500), rng.normal(100, 30, 500)
    assert R.mean_absolute_error(y, p) == pytest.approx(skm.mean_absolute_error(y, p), abs=1e-12)
    assert R.root_mean_squared_error(y, p) == pytest.approx(skm.root_mean_squared_error(y, p), abs=1e-12)


def test_known_values():
    assert R.mean_absolute_error([1, 2, 3], [2, 2, 5]) == 1.0
    assert R.root_mean_squared_error([0, 0], [3, 4]) == pytest.approx(np.sqrt(12.5))


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="different shapes"):
        R.mean_absolute_error([1, 2], [1])
    with pytest.raises(ValueError, match="finite"):
        R.mean_absolute_error([1, np.nan], [1, 2])


def test_the_task_scores_missing_cases_with_the_largest_allowed_error(write):
    t = write("t.csv", "case_id,value\na,10\nb,200\nc,50\n")
    p = write("p.csv", "case_id,value\na,12\nb,190\n")
    r = evaluator.score("regression", t, p, {"value_range": [0, 228]})
    assert r["missing_cases"] == 1
    errors = [2, 10, 178]  # c = 50: worst allowed prediction is 228
    assert r["metrics"]["mae"] == pytest.approx(np.mean(errors))
    assert r["metrics"]["rmse"] == pytest.approx(np.sqrt(np.mean(np.square(errors))))
    lo, hi = r["metrics"]["mae_ci"]
    assert (lo, hi) == pytest.approx(bootstrap_metric_ci(np.mean, np.array(errors, float)))
    assert [c["mae"] for c in r["per_case"]] == pytest.approx(errors)


def test_the_task_validates(write):
    t = write("t.csv", "case_id,value\na,10\nb,200\n")
    for text, msg in [("case_id,age\na,1\n", "expected 'case_id,value'"), ("case_id,value\na,inf\n", "finite"),
                      ("case_id,value\nz,3\n", "unknown case id 'z'"), ("case_id,value\n", "no rows")]:
        with pytest.raises(SubmissionInvalid, match=msg):
            evaluator.validate("regression", write("p.csv", text), truth=t)
