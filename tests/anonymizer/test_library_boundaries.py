"""The anonymizer is a library: no Django, no Celery, nothing of the site."""

import subprocess
import sys


def test_importing_anonymizer_loads_no_web_framework():
    code = (
        "import sys, anonymizer, anonymizer.cli, anonymizer.synthetic\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('django', 'celery', 'rest_framework', 'mica', 'config'))\n"
        "print(bad)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
