import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_evaluator_loads_no_framework():
    code = ("import sys, evaluator, evaluator.cli, evaluator.statistics; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'rest_framework', 'mica', 'config')]; "
            "print(bad); assert not bad")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_public_api():
    import evaluator

    assert evaluator.TASKS == ("classification", "regression", "detection", "segmentation")
    for name in ("score", "validate", "SubmissionInvalid", "Problem", "METRICS", "pick_device"):
        assert hasattr(evaluator, name)
    assert issubclass(evaluator.SubmissionInvalid, ValueError)
    assert {m.task for m in evaluator.METRICS.values()} == set(evaluator.TASKS)
    assert evaluator.pick_device().type in ("cpu", "cuda")
