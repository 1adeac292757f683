"""The two files of the participant contract: ``/input/cases.json`` and where predictions go."""

from __future__ import annotations

import json
import posixpath
from pathlib import Path

__all__ = ["CASES_FILE", "write_cases", "predictions_path"]

CASES_FILE = "cases.json"


def write_cases(input_dir, cases) -> Path:
    """Write ``input_dir/cases.json`` for ``cases`` ({case_id: [file, ...]}, files relative to
    ``input_dir``, which must exist there):
    ``{"cases": [{"case_id": "c1", "files": ["images/c1.png"]}, ...]}``, in the given order."""
    input_dir = Path(input_dir)
    listed = []
    for case_id, files in cases.items():
        if not isinstance(case_id, str) or not case_id:
            raise ValueError(f"case ids must be non-empty strings, got {case_id!r}")
        files = [str(f) for f in files]
        for f in files:
            parts = posixpath.normpath(f).split("/")
            if f.startswith("/") or ".." in parts:
                raise ValueError(f"case {case_id!r}: the file {f!r} is not a relative path inside the input")
            if not (input_dir / f).is_file():
                raise ValueError(f"case {case_id!r}: the file {f!r} is not in the input folder")
        listed.append({"case_id": case_id, "files": files})
    path = input_dir / CASES_FILE
    path.write_text(json.dumps({"cases": listed}, indent=1))
    return path


def predictions_path(output_dir, task) -> Path:
    """Where a container leaves its predictions: ``predictions.csv`` for classification,
    detection and regression, the folder ``masks/`` for segmentation."""
    output_dir = Path(output_dir)
    return output_dir / "masks" if task == "segmentation" else output_dir / "predictions.csv"
