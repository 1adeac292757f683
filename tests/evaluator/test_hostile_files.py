"""Issue 20's hostile CSV files and values: each refused with a named problem, or scored JSON-safe.

Bad inputs tried here: 1e308 predictions (regression and detection), a 30 MB one-line CSV, a
long line in the middle of a file, a duplicate case in an extra row, "1_000", non-ASCII
digits, " 0.5" padded inside quotes, an unterminated quote (at the end and in the middle),
a stray quote inside a field.
"""

import json
import tracemalloc

import pytest

import evaluator
from evaluator import SubmissionInvalid

TRUTH = "case_id,label\na,1\nb,0\nc,1\nd,0\n"


def problems(write, text, task="classification", truth=TRUTH, **kw):
    with pytest.raises(SubmissionInvalid) as exc:
        evaluator.validate(task, write("predictions.csv", text), truth=write("truth.csv", truth), **kw)
    return exc.value


def test_huge_finite_predictions_give_a_json_safe_result_with_notes(write):
    result = evaluator.score("regression", write("t.csv", "case_id,value\na,10\nb,20\nc,30\n"),
                             write("p.csv", "case_id,value\na,1e308\nb,-1e308\nc,1e308\n"))
    text = json.dumps(result, allow_nan=False)
    assert "Infinity" not in text and "NaN" not in text
    assert result["metrics"]["rmse"] is None and result["metrics"]["mae"] is None
    assert ("rmse: too large to represent (the predictions are too far from the truth); reported as null"
            in result["notes"])
    assert result["per_case"][0]["mae"] == pytest.approx(1e308)


def test_undefined_metrics_are_null_with_a_note(write):
    result = evaluator.score("classification", write("t.csv", "case_id,label\na,1\nb,1\n"),
                             write("p.csv", "case_id,score\na,0.3\nb,0.8\n"))
    assert result["metrics"]["auc"] is None
    assert any(note.startswith("auc: undefined for these cases") for note in result["notes"])
    json.dumps(result, allow_nan=False)


def test_huge_boxes_score_json_safe(write):
    truth = write("t.csv", "patientId,x,y,width,height,Target\np1,10,10,20,20,1\np2,,,,,0\n")
    pred = write("p.csv", "patientId,PredictionString\np1,0.9 1e308 1e308 1e308 1e308\np2,0.5 0 0 1e308 1e308\n")
    json.dumps(evaluator.score("detection", truth, pred), allow_nan=False)


def test_a_30_mb_one_line_csv_is_refused_in_little_memory(tmp_path, write):
    path = tmp_path / "one_line.csv"
    with open(path, "wb") as fh:
        fh.write(b"case_id,score\n")
        for _ in range(30):
            fh.write(b"a" * (1 << 20))
    truth = write("truth.csv", TRUTH)
    tracemalloc.start()
    try:
        with pytest.raises(SubmissionInvalid) as exc:
            evaluator.validate("classification", path, truth=truth, name="one_line.csv")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(exc.value.problems[0]) == "one_line.csv, row 2: has a line longer than the limit of 1,048,576 bytes"
    assert peak < 8 << 20


def test_the_line_limit_is_an_option(write):
    exc = problems(write, "case_id,score\na,0.5\nb," + "0" * 50 + "\n", options={"max_line_bytes": 40})
    assert str(exc.problems[0]) == "predictions.csv, row 3: has a line longer than the limit of 40 bytes"


def test_a_duplicate_in_an_extra_row_is_named_as_a_duplicate(write):
    exc = problems(write, "case_id,score\na,0.1\nb,0.2\nc,0.3\nd,0.4\nb,0.5\n")
    assert [p.message for p in exc.problems] == ["duplicate case id 'b': rows 3 and 6"]


@pytest.mark.parametrize("value", ["1_000", "0_5", "٠.٥", "0x1p-1", "1,5", "½"])
def test_what_python_float_accepts_is_not_a_csv_number(write, value):
    exc = problems(write, f'case_id,value\na,"{value}"\n', task="regression", truth="case_id,value\na,1\n")
    assert exc.problems[0].message == f"{value!r} is not a number"


def test_plain_numbers_still_parse(write):
    for value in ("1", "-2.5", "+3.", ".5", "1e3", "1E-3", "  7 "):
        evaluator.validate("regression", write("p.csv", f"case_id,value\na,{value}\n"), case_ids=["a"])


def test_an_unterminated_quote_is_named_as_such(write):
    exc = problems(write, 'case_id,score\na,0.1\nb,"0.2\nc,0.3\nd,0.4\n')
    assert str(exc.problems[-1]) == 'predictions.csv, row 3: has an unterminated quote (") starting in row 3'
    exc = problems(write, 'case_id,score\na,0.1\n"b,0.2\n' + "c,0.3\n" * 30000)
    assert 'an unterminated quote (") after row 2' in str(exc)


def test_text_after_a_closing_quote_is_named(write):
    exc = problems(write, 'case_id,score\na,"0.1"x\n')
    assert str(exc.problems[0]) == "predictions.csv, row 2: is not valid CSV (',' expected after '\"')"


def test_per_case_overflow_is_noted(write):
    result = evaluator.score("classification", write("t.csv", TRUTH), write("p.csv", "case_id,score\na,0.5\n"))
    assert result["notes"] == []  # nothing undefined, nothing too large
    huge = evaluator.score("regression", write("t2.csv", "case_id,value\na,-1e308\nb,1\n"),
                           write("p2.csv", "case_id,value\na,1e308\nb,1\n"))
    assert huge["per_case"][0]["mae"] is None
    assert "per-case mae: 1 value too large to represent" in " ".join(huge["notes"])
    json.dumps(huge, allow_nan=False)
