"""The keep list: public attributes known to carry no identity, and how each is kept.

The list lives in `keep_list.tsv` next to this module (tag, keyword, VR, how), so it can be
read and reviewed without reading code; its header says how it was built and what each
`how` means. A public attribute that is neither on it nor in the Annex E table is removed.
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

LIST_PATH = Path(__file__).with_name("keep_list.tsv")

HOWS = {
    "number", "code-string", "remap", "date", "time", "walk", "pixels", "device", "label", "code", "meaning",
    "empty",
}


@lru_cache(maxsize=1)
def keep_list() -> dict[int, str]:
    """Tag -> how it is kept."""
    kept = {}
    with LIST_PATH.open(encoding="utf-8") as handle:
        lines = (line for line in handle if not line.startswith("#"))
        for row in csv.DictReader(lines, delimiter="\t"):
            if row["how"] not in HOWS:
                raise ValueError(f"{LIST_PATH}: unknown how {row['how']!r} for {row['tag']}")
            group, element = row["tag"].strip("()").split(",")
            kept[(int(group, 16) << 16) | int(element, 16)] = row["how"]
    return kept
