"""The /output measure on its own: a folder the container made unreadable hides nothing from it,
for a worker that is not root too (root reads any folder anyway)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from evaluator import containers

AS_WORKER = """
import importlib.util, json, os, sys
from pathlib import Path
package = Path(sys.argv[1])
spec = importlib.util.spec_from_file_location("mica_containers", package / "__init__.py",
                                              submodule_search_locations=[str(package)])
containers = importlib.util.module_from_spec(spec)
sys.modules["mica_containers"] = containers
spec.loader.exec_module(containers)
from mica_containers.outputs import empty, over_cap
out = Path(sys.argv[2])
hidden = out / "masks"
hidden.mkdir()
for i in range(20):
    (hidden / f"c{i}.png").write_bytes(b"x" * 100)
hidden.chmod(0)  # what a container may do to its own folder
found = [over_cap(out, containers.Limits(output_files=10)), over_cap(out, containers.Limits(output_bytes=1000)),
         over_cap(out, containers.Limits(output_files=21, output_bytes=2000))]
empty(out)
print(json.dumps({"found": found, "left": os.listdir(out)}))
"""


def test_an_unreadable_folder_in_output_is_counted_and_emptied_by_a_worker_that_is_not_root():
    work = Path(tempfile.mkdtemp(prefix="mica-outputs-"))
    try:
        (work / "output").mkdir()
        work.chmod(0o755)
        argv = [sys.executable if os.geteuid() else "/usr/bin/python3", "-c", AS_WORKER,
                str(Path(containers.__file__).parent), str(work / "output")]
        if os.geteuid() == 0:
            shutil.chown(work / "output", 65534, 65534)
            argv = ["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == {"found": ["files", "bytes", None], "left": []}
    finally:
        shutil.rmtree(work, ignore_errors=True)
