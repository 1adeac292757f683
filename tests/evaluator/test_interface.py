"""The interface the site codes against: describe_truth, validate(truth_info=...), score(case_ids=...),
name=, task_options, METRICS.

Bad inputs tried here: truth_info of another task or not a dict, case_ids naming cases the
truth lacks, empty case_ids, two of truth/case_ids/truth_info at once, a missing predictions
file shown by its display name.
"""

import json

import numpy as np
import pytest
from sklearn import metrics as skm

import evaluator
from evaluator import SubmissionInvalid

from .test_mask_archives import make_zip, png_bytes

BINARY = "case_id,pneumonia\nc,1\na,0\nb,1\nd,0\ne,1\nf,0\n"
MULTI = "case_id,any,subdural\na,1,1\nb,0,0\nc,1,0\nd,0,0\n"
REGRESSION = "case_id,value\na,1\nb,2\nc,3\nd,4\ne,5\nf,6\ng,7\nh,8\n"
DETECTION = "patientId,x,y,width,height,Target\np1,10,10,20,20,1\np1,50,50,10,10,1\np2,,,,,0\np3,5,5,5,5,1\n"


def test_describe_truth_gives_json_safe_facts_for_every_csv_task(write):
    binary = evaluator.describe_truth("classification", write("b.csv", BINARY))
    assert binary == {"task": "classification", "case_ids": list("cabdef"), "predictions_header": ["case_id", "score"],
                      "labels": ["pneumonia"], "strata": dict(zip("cabdef", "101010")), "masks": None}
    multi = evaluator.describe_truth("classification", write("m.csv", MULTI))
    assert multi["strata"] == {"a": "any+subdural", "b": "none", "c": "any", "d": "none"}
    assert multi["predictions_header"] == ["case_id", "any", "subdural"]
    regression = evaluator.describe_truth("regression", write("r.csv", REGRESSION))
    assert list(regression["strata"].values()) == ["q1", "q1", "q2", "q2", "q3", "q3", "q4", "q4"]
    detection = evaluator.describe_truth("detection", write("d.csv", DETECTION))
    assert detection["strata"] == {"p1": "positive", "p2": "negative", "p3": "positive"}
    assert detection["predictions_header"] == ["patientId", "PredictionString"]
    for facts in (binary, multi, regression, detection):
        assert json.loads(json.dumps(facts, allow_nan=False)) == facts


def test_the_old_truth_functions_are_views_of_describe_truth(write):
    truth = write("b.csv", BINARY)
    assert evaluator.truth_case_ids("classification", truth) == list("cabdef")
    assert evaluator.predictions_header("classification", truth) == ["case_id", "score"]


@pytest.mark.parametrize("task, truth, good, bad, message", [
    ("classification", BINARY, "case_id,pneumonia\na,0.2\n", "case_id,score\nzz,0.5\n", "unknown case id 'zz'"),
    ("classification", MULTI, "case_id,any,subdural\na,0.2,0.1\n", "case_id,score\na,0.5\n",
     "expected 'case_id,any,subdural', found 'case_id,score'"),
    ("regression", REGRESSION, "case_id,value\na,2\n", "case_id,value\na,2\na,3\n", "duplicate case id 'a'"),
    ("detection", DETECTION, "patientId,PredictionString\np1,0.9 10 10 20 20\n", "patientId,PredictionString\np9,\n",
     "unknown patientId 'p9'"),
])
def test_validate_from_the_facts_alone_reads_no_truth(write, task, truth, good, bad, message):
    path = write("truth.csv", truth)
    info = evaluator.describe_truth(task, path)
    path.unlink()
    evaluator.validate(task, write("good.csv", good), truth_info=info, name="good.csv")
    with pytest.raises(SubmissionInvalid) as exc:
        evaluator.validate(task, write("bad.csv", bad), truth_info=info, name="my predictions.csv")
    assert message in str(exc.value)
    assert all(p.file == "my predictions.csv" for p in exc.value.problems)


def test_bad_uses_of_the_interface_are_value_errors(write):
    truth = write("b.csv", BINARY)
    p = write("p.csv", "case_id,score\na,0.5\n")
    info = evaluator.describe_truth("classification", truth)
    with pytest.raises(ValueError, match="exactly one of truth, case_ids and truth_info"):
        evaluator.validate("classification", p, truth=truth, truth_info=info)
    with pytest.raises(ValueError, match="describes a 'classification' truth, not 'regression'"):
        evaluator.validate("regression", p, truth_info=info)
    with pytest.raises(ValueError, match="must be the dict describe_truth returned"):
        evaluator.validate("classification", p, truth_info={"case_ids": "abc"})
    with pytest.raises(ValueError, match="names 2 cases that the truth does not have"):
        evaluator.score("classification", truth, p, case_ids=["a", "x", "y"])
    with pytest.raises(ValueError, match="case_ids is empty"):
        evaluator.score("classification", truth, p, case_ids=[])
    with pytest.raises(SubmissionInvalid, match="^1 problem found in the submission:\n  team.csv: does not exist$"):
        evaluator.score("classification", truth, truth.with_name("gone.csv"), name="team.csv")
    with pytest.raises(ValueError, match="truth 'gone.csv' does not exist"):
        evaluator.describe_truth("classification", truth.with_name("gone.csv"))


# ----------------------------------------------------------------------------- case_ids: splits
def test_classification_scores_a_subset_ignoring_predictions_for_other_cases(write):
    truth = write("t.csv", BINARY)
    pred = write("p.csv", "case_id,score\nc,0.9\na,0.2\nb,0.4\nd,0.5\n")  # e, f missing; c, d outside the subset
    public = ["a", "b", "e", "f"]
    r = evaluator.score("classification", truth, pred, case_ids=public)
    assert r["n_cases"] == 4 and r["missing_cases"] == 2
    assert [row["case_id"] for row in r["per_case"]] == ["a", "b", "e", "f"]
    y = [0, 1, 1, 0]
    s = [0.2, 0.4, -1, 2]  # the missing positive e below everything, the missing negative f above
    assert r["metrics"]["auc"] == pytest.approx(skm.roc_auc_score(y, s))


def test_regression_and_detection_score_subsets(write):
    r = evaluator.score("regression", write("t.csv", REGRESSION), write("p.csv", "case_id,value\na,2\nb,2\nh,1\n"),
                        case_ids=["a", "b", "c"])
    assert (r["n_cases"], r["missing_cases"]) == (3, 1)
    # c (3) is missing: the worst allowed prediction over the whole truth's range [1, 8] is 8
    assert r["metrics"]["mae"] == pytest.approx(np.mean([1, 0, 5]))
    d = evaluator.score("detection", write("d.csv", DETECTION),
                        write("dp.csv", "patientId,PredictionString\np1,0.9 10 10 20 20\np3,0.8 5 5 5 5\n"),
                        case_ids=["p3", "p2"])
    assert (d["n_cases"], d["missing_cases"]) == (2, 1)
    assert [row["case_id"] for row in d["per_case"]] == ["p2", "p3"]
    assert d["metrics"]["map"] == 1.0  # p2 has neither truth nor predictions and is left out


def test_segmentation_scores_a_subset_without_reading_other_cases(tmp_path):
    t = {c: np.zeros((8, 8), np.uint8) for c in ("a", "b", "c")}
    for m in t.values():
        m[2:5, 2:5] = 1
    truth = make_zip(tmp_path / "t.zip", {f"{c}.png": png_bytes(m) for c, m in t.items()})
    pred = make_zip(tmp_path / "p.zip", {"a.png": png_bytes(t["a"]), "c.png": b"a private case: never read"})
    r = evaluator.score("segmentation", truth, pred, case_ids=["a", "b"])
    assert (r["n_cases"], r["missing_cases"]) == (2, 1)
    assert [row["dice"] for row in r["per_case"]] == [1.0, 0.0]


# ----------------------------------------------------------------------------- options for forms
def test_task_options_list_what_each_task_accepts_with_json_defaults():
    for task in evaluator.TASKS:
        options = evaluator.task_options(task)
        json.dumps(options, allow_nan=False)
        for name, spec in options.items():
            assert set(spec) == {"default", "type", "help"} and spec["help"], name
            assert spec["type"] in ("float", "int", "str", "list", "dict"), name
    assert evaluator.task_options("classification")["threshold"]["default"] == 0.5
    assert "target_sensitivity" in evaluator.task_options("classification")
    assert evaluator.task_options("regression")["value_range"]["default"] is None
    assert evaluator.task_options("segmentation")["nsd_tolerance"]["default"] == 1.0
    assert "spacing" in evaluator.task_options("segmentation")
    assert "max_bytes" not in evaluator.task_options("segmentation")
    assert evaluator.task_options("detection")["iou_thresholds"]["default"][0] == 0.4


def test_every_listed_option_is_accepted_and_no_other(write):
    truth = write("t.csv", BINARY)
    pred = write("p.csv", "case_id,score\na,0.5\nb,0.7\n")
    defaults = {k: v["default"] for k, v in evaluator.task_options("classification").items()}
    assert evaluator.score("classification", truth, pred, defaults)["metrics"] == \
        evaluator.score("classification", truth, pred)["metrics"]
    with pytest.raises(ValueError, match="unknown option"):
        evaluator.score("classification", truth, pred, {"nsd_tolerance": 1})


def test_every_metric_says_its_task_direction_and_meaning():
    for name, metric in evaluator.METRICS.items():
        assert metric.task in evaluator.TASKS and isinstance(metric.higher_is_better, bool) and metric.description
