import json
import subprocess
import sys

ROOT = __import__("pathlib").Path(__file__).resolve().parents[2]


def run(*args):
    return subprocess.run([sys.executable, "-m", "evaluator", *args], cwd=ROOT, capture_output=True, text=True)


def test_score_prints_one_json_object(write):
    t = write("t.csv", "case_id,label\na,1\nb,0\n")
    p = write("p.csv", "case_id,score\na,0.8\nb,0.3\n")
    r = run("score", "--task", "classification", "--truth", str(t), "--predictions", str(p), "--option", "threshold=0.9")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["metrics"]["auc"] == 1.0 and out["metrics"]["sensitivity"] == 0.0


def test_validate_exit_codes(write):
    t = write("t.csv", "case_id,label\na,1\nb,0\n")
    ok = write("ok.csv", "case_id,score\na,0.8\n")
    bad = write("bad.csv", "case_id,score\na,x\n")
    ids = write("ids.txt", "a\nb\n")
    r = run("validate", "--task", "classification", "--truth", str(t), "--predictions", str(ok))
    assert (r.returncode, r.stdout.strip()) == (0, "OK: 2 cases")
    r = run("validate", "--task", "classification", "--case-ids", str(ids), "--predictions", str(ok))
    assert (r.returncode, r.stdout.strip()) == (0, "OK: 2 cases")
    r = run("validate", "--task", "classification", "--truth", str(t), "--predictions", str(bad))
    assert r.returncode == 1 and "'x' is not a number" in r.stdout
    r = run("validate", "--task", "classification", "--truth", str(t) + "nope", "--predictions", str(ok))
    assert r.returncode == 2
    r = run("score", "--task", "nope", "--truth", str(t), "--predictions", str(ok))
    assert r.returncode == 2
