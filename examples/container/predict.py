"""A worked Mica algorithm: read the cases from /input, write /output/predictions.csv.

/input is read-only and holds the cases' files plus cases.json:
    {"cases": [{"case_id": "c1", "files": ["images/c1.png"]}, ...]}
/output starts empty; for classification, detection and regression write predictions.csv
(the header `python -m evaluator validate` expects), for segmentation one mask per case in
/output/masks/. /tmp is writable scratch space. There is no network: ship the weights inside
the image.

The "model" here scores each case by its files' mean byte value; replace `predict` with yours.
"""

import csv
import json
import os
from pathlib import Path

INPUT = Path(os.environ.get("MICA_INPUT", "/input"))
OUTPUT = Path(os.environ.get("MICA_OUTPUT", "/output"))


def predict(paths):
    data = b"".join(p.read_bytes() for p in paths)
    return round(sum(data) / (255 * len(data)), 6) if data else 0.5


def main():
    cases = json.loads((INPUT / "cases.json").read_text())["cases"]
    with open(OUTPUT / "predictions.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["case_id", "score"])
        for case in cases:
            writer.writerow([case["case_id"], predict([INPUT / f for f in case["files"]])])
    print(f"wrote {len(cases)} predictions")


if __name__ == "__main__":
    main()
