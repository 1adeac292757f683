"""The classification submission format: scoring through evaluator.score and every bad input."""

import math

import numpy as np
import pytest
from sklearn import metrics as skm

import evaluator
from evaluator import SubmissionInvalid

TRUTH = "case_id,label\na,1\nb,0\nc,1\nd,0\ne,1\nf,0\n"
GOOD = "case_id,score\na,0.9\nb,0.2\nc,0.4\nd,0.5\ne,0.7\nf,0.1\n"


def problems(write, text, truth=TRUTH, **kw):
    t = write("truth.csv", truth)
    p = write("predictions.csv", text)
    with pytest.raises(SubmissionInvalid) as exc:
        evaluator.validate("classification", p, truth=t, **kw)
    return exc.value


def test_it_scores_a_binary_submission(write):
    result = evaluator.score("classification", write("t.csv", TRUTH), write("p.csv", GOOD))
    y = [1, 0, 1, 0, 1, 0]
    s = [0.9, 0.2, 0.4, 0.5, 0.7, 0.1]
    assert result["task"] == "classification" and result["n_cases"] == 6 and result["missing_cases"] == 0
    m = result["metrics"]
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert m["average_precision"] == pytest.approx(skm.average_precision_score(y, s))
    assert m["log_loss"] == pytest.approx(skm.log_loss(y, s))
    assert len(m["auc_ci"]) == 2 and m["auc_ci"][0] <= m["auc"] <= m["auc_ci"][1]
    assert [r["case_id"] for r in result["per_case"]] == list("abcdef")
    import json

    json.dumps(result, allow_nan=False)


def test_missing_cases_score_as_the_worst_prediction(write):
    # a (positive) and b (negative) are missing: a ranks below everything, b above everything
    pred = "case_id,score\nc,0.4\nd,0.5\ne,0.7\nf,0.1\n"
    result = evaluator.score("classification", write("t.csv", TRUTH), write("p.csv", pred))
    assert result["missing_cases"] == 2
    y = [1, 0, 1, 0, 1, 0]
    s = [-1, 2, 0.4, 0.5, 0.7, 0.1]
    assert result["metrics"]["auc"] == pytest.approx(skm.roc_auc_score(y, s))
    assert result["metrics"]["sensitivity"] == pytest.approx(1 / 3)
    assert [r["missing"] for r in result["per_case"]] == [True, True, False, False, False, False]
    eps = np.finfo(float).eps
    assert result["per_case"][0]["log_loss"] == pytest.approx(-math.log(eps))


def test_multi_label_uses_the_truth_header_and_macro_averages(write, rng):
    labels = ["any", "epidural", "subdural"]
    Y = rng.integers(0, 2, (40, 3))
    P = rng.random((40, 3)).round(3)
    ids = [f"ID_{i}" for i in range(40)]
    truth = "case_id," + ",".join(labels) + "\n" + "".join(f"{c},{','.join(map(str, r))}\n" for c, r in zip(ids, Y))
    pred = "case_id," + ",".join(labels) + "\n" + "".join(f"{c},{','.join(map(str, r))}\n" for c, r in zip(ids, P))
    result = evaluator.score("classification", write("t.csv", truth), write("p.csv", pred),
                             {"log_loss_weights": {"any": 2}, "target_sensitivity": 0.9})
    m = result["metrics"]
    aucs = [skm.roc_auc_score(Y[:, j], P[:, j]) for j in range(3)]
    for j, lab in enumerate(labels):
        assert m[f"auc/{lab}"] == pytest.approx(aucs[j])
        assert len(m[f"auc_ci/{lab}"]) == 2
    assert m["auc"] == pytest.approx(np.mean(aucs))
    w = np.array([2, 1, 1.0])
    assert m["log_loss"] == pytest.approx(skm.log_loss(Y.ravel(), P.ravel(), sample_weight=np.tile(w, 40)))
    assert "operating_specificity/any" in m


def test_binary_predictions_take_score_or_the_truths_own_label_header(write):
    t = write("t.csv", TRUTH)
    with_label = evaluator.score("classification", t, write("p1.csv", GOOD.replace("score", "label")))
    with_score = evaluator.score("classification", t, write("p2.csv", GOOD))
    assert with_label["metrics"] == with_score["metrics"]
    evaluator.validate("classification", write("p3.csv", "case_id,label\na,0.5\n"), case_ids=list("abcdef"))
    exc = problems(write, "case_id,prob\na,0.5\n")
    assert "expected 'case_id,score' or 'case_id,label', found 'case_id,prob'" in str(exc)
    assert exc.problems[0].row == 1


@pytest.mark.parametrize("content, expected", [
    (b"", "is empty (0 bytes)"),
    ("case_id,score\n", "has a header but no rows"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary"),
    (b"case_id,score\na,0.5\n\xff\xfe\xfa,0.3\n", "not UTF-8"),
    ("id,prob\na,0.5\n", "expected 'case_id,score' or 'case_id,label', found 'id,prob'"),
    ("case_id,score\na,0.5\nb,0.2\na,0.3\n", "duplicate case id 'a': rows 2 and 4"),
    ("case_id,score\nzz,0.5\n", "unknown case id 'zz'"),
    ("case_id,score\na,abc\n", "'abc' is not a number"),
    ("case_id,score\na,nan\n", "'nan' is not a finite number"),
    ("case_id,score\na,inf\n", "'inf' is not a finite number"),
    ("case_id,score\na,1.5\n", "outside [0, 1]"),
    ("case_id,score\na,-0.1\n", "outside [0, 1]"),
    ("case_id,score\na,0.5,0.2\n", "has 3 columns, expected 2"),
    ("case_id,score\na\n", "has 1 columns, expected 2"),
])
def test_it_rejects_bad_files_naming_the_problem(write, content, expected):
    exc = problems(write, content)
    assert expected in str(exc), str(exc)
    assert all(p.file == "predictions.csv" for p in exc.problems)


def test_problems_carry_their_place(write):
    exc = problems(write, "case_id,score\na,0.5\nb,abc\n")
    (p,) = exc.problems
    assert (p.file, p.row, p.column, p.case_id) == ("predictions.csv", 3, "score", "b")
    assert str(p) == "predictions.csv, row 3, column 'score', case 'b': 'abc' is not a number"


def test_every_problem_is_reported_up_to_a_cap(write):
    rows = "".join(f"x{i},0.5\n" for i in range(6))
    exc = problems(write, "case_id,score\n" + rows)
    assert len(exc.problems) == 6
    assert str(exc).count("\n") == 6


def test_the_problem_list_is_capped(write):
    ids = [f"c{i}" for i in range(200)]
    truth = "case_id,label\n" + "".join(f"{c},{i % 2}\n" for i, c in enumerate(ids))
    pred = "case_id,score\n" + "".join(f"{c},x\n" for c in ids)
    exc = problems(write, pred, truth=truth)
    assert len(exc.problems) == evaluator.problems.MAX_PROBLEMS and exc.n_more == 150
    assert "and 150 more" in str(exc)


def test_a_file_over_the_size_limit_is_refused_from_its_size(write):
    exc = problems(write, GOOD, options={"max_bytes": 10})
    assert "over the limit of 10 bytes" in str(exc)


def test_more_rows_than_the_truth_is_refused_while_streaming(write):
    rows = "".join(f"y{i},0.5\n" for i in range(100_000))
    exc = problems(write, "case_id,score\n" + rows)
    assert "more rows than the 6 allowed" in str(exc)


def test_missing_cases_are_not_a_validation_error(write):
    evaluator.validate("classification", write("p.csv", "case_id,score\na,0.5\n"), truth=write("t.csv", TRUTH))


def test_validate_with_case_ids_instead_of_truth(write):
    p = write("p.csv", "case_id,score\na,0.5\nq,0.1\n")
    with pytest.raises(SubmissionInvalid, match="unknown case id 'q'"):
        evaluator.validate("classification", p, case_ids=["a", "b"])
    evaluator.validate("classification", write("ok.csv", "case_id,score\na,0.5\n"), case_ids=["a", "b"])


def test_bad_truth_and_options_are_value_errors(write):
    p = write("p.csv", GOOD)
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        evaluator.score("classification", write("t.csv", "case_id,label\na,2\n"), p)
    with pytest.raises(ValueError, match="unknown option 'treshold'"):
        evaluator.score("classification", write("t2.csv", TRUTH), p, {"treshold": 0.3})
    with pytest.raises(ValueError, match="unknown task"):
        evaluator.score("classify", write("t3.csv", TRUTH), p)
    with pytest.raises(SubmissionInvalid):
        evaluator.score("classification", write("t4.csv", TRUTH), write("bad.csv", "case_id,score\na,2\n"))


def test_one_class_truth_gives_null_auc(write):
    result = evaluator.score("classification", write("t.csv", "case_id,label\na,1\nb,1\n"),
                             write("p.csv", "case_id,score\na,0.3\nb,0.8\n"))
    assert result["metrics"]["auc"] is None and result["metrics"]["auc_ci"] == [None, None]


def test_a_utf8_bom_and_crlf_line_endings_are_accepted(write):
    text = "\ufeff" + GOOD.replace("\n", "\r\n")
    evaluator.validate("classification", write("p.csv", text), truth=write("t.csv", TRUTH))
