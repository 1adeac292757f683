import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_importing_curation_loads_no_framework():
    code = ("import sys, curation; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'rest_framework', 'mica', 'config')]; "
            "print(bad); assert not bad")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_public_api_is_exported():
    import curation

    for name in curation.__all__:
        assert hasattr(curation, name), name
