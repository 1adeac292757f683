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



def main(capsys, *args):
    """The CLI in this process (the subprocess tests above show it runs as ``python -m``)."""
    from evaluator.cli import main as cli_main

    code = cli_main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_validate_takes_the_case_ids_csv_the_site_serves(write, capsys):
    ok = write("ok.csv", "case_id,score\na,0.8\n")
    served = write("case-ids.csv", "case_id\r\na\r\n\"b,2\"\r\n")  # the site's csv.writer output
    code, out, _ = main(capsys, "validate", "--task", "classification", "--case-ids", str(served),
                        "--predictions", str(ok))
    assert (code, out.strip()) == (0, "OK: 2 cases")
    unknown = write("unknown.csv", "case_id,score\ncase_id,0.5\n")  # the header line is not a case
    code, out, _ = main(capsys, "validate", "--task", "classification", "--case-ids", str(served),
                        "--predictions", str(unknown))
    assert code == 1 and "unknown case id 'case_id'" in out
    two_columns = write("bad-ids.csv", "case_id\na,1\n")
    code, _, err = main(capsys, "validate", "--task", "classification", "--case-ids", str(two_columns),
                        "--predictions", str(ok))
    assert code == 2 and "row 2: expected one case id per line, found 2 columns" in err


def test_validate_and_score_read_a_zip_of_masks(tmp_path, capsys):
    import numpy as np

    from .test_mask_archives import make_zip, png_bytes

    mask = np.zeros((8, 8), np.uint8)
    mask[2:5, 2:5] = 1
    truth = make_zip(tmp_path / "truth.zip", {"a.png": png_bytes(mask), "b.png": png_bytes(mask)})
    good = make_zip(tmp_path / "good.zip", {"out/a.png": png_bytes(mask)})
    bad = make_zip(tmp_path / "bad.zip", {"a.png": png_bytes(mask[:, :4])})
    code, out, _ = main(capsys, "validate", "--task", "segmentation", "--truth", str(truth), "--predictions", str(good))
    assert (code, out.strip()) == (0, "OK: 2 cases")
    code, out, _ = main(capsys, "validate", "--task", "segmentation", "--truth", str(truth), "--predictions", str(bad))
    assert code == 1 and "bad.zip, entry 'a.png', case 'a': mask size (8, 4) differs from the truth's (8, 8)" in out
    code, out, _ = main(capsys, "score", "--task", "segmentation", "--truth", str(truth), "--predictions", str(good))
    assert code == 0 and json.loads(out)["metrics"]["dice"] == 0.5
