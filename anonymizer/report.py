"""The audit report of a run: one outcome per input file and the actions taken, by count."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal


@dataclass(frozen=True)
class OriginalIdentifiers:
    """What the sender called a DICOM file, read before anonymization: they re-identify, so
    they go only into the organizer's private report (to map labels keyed by hospital
    identifiers onto cases), never into the public report, a page or a log. None: absent."""

    patient_id: str | None = None
    issuer_of_patient_id: str | None = None
    accession_number: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    sop_instance_uid: str | None = None


# Fields of FileOutcome that re-identify: only in Report.to_dict(private=True).
PRIVATE_FIELDS = ("private_source", "original")


@dataclass(frozen=True)
class FileOutcome:
    source: str  # keys.source_name of the path: safe to show anywhere
    status: Literal["anonymized", "quarantined"]
    reason: str | None = None  # why quarantined; names the attribute and the problem, never a value
    output: str | None = None  # path relative to OUT
    kind: Literal["dicom", "png", "jpeg"] | None = None
    patient_pseudonym: str | None = None
    study_uid: str | None = None
    series_uid: str | None = None
    sop_instance_uid: str | None = None
    modality: str | None = None
    # The path relative to SRC or the zip entry name, as given: it can hold names, so it is
    # for the organizer's private copy of the report only, never for a page or a log.
    private_source: str | None = None
    # The sender's identifiers of a DICOM file (also of a quarantined one, when they could
    # be read): private, like private_source.
    original: OriginalIdentifiers | None = None


@dataclass
class Report:
    profile: str
    key_fingerprint: str
    files: list[FileOutcome] = field(default_factory=list)
    action_counts: dict[str, int] = field(default_factory=dict)
    uid_map: dict[str, str] = field(default_factory=dict)
    uid_map_kept: bool = False
    error: str | None = None  # why the run stopped before any file (SRC unreadable)

    @property
    def anonymized(self) -> list[FileOutcome]:
        return [outcome for outcome in self.files if outcome.status == "anonymized"]

    @property
    def quarantined(self) -> list[FileOutcome]:
        return [outcome for outcome in self.files if outcome.status == "quarantined"]

    def add(self, outcome: FileOutcome, actions: Counter | None = None, uid_map=None) -> None:
        self.files.append(outcome)
        for name, count in (actions or {}).items():
            self.action_counts[name] = self.action_counts.get(name, 0) + count
        if uid_map and self.uid_map_kept:
            self.uid_map.update(uid_map)

    def to_dict(self, *, private: bool = False) -> dict:
        """The report without the UID map (it re-identifies, so it travels separately).

        Public by default: each file named by its keyed hash (`source`) only. `private=True`
        is the organizer's copy: each file also with its path in SRC (`private_source`) and
        the sender's identifiers (`original`), so labels keyed by them can be mapped on.
        """
        files = [asdict(outcome) for outcome in self.files]
        if not private:
            files = [{name: value for name, value in entry.items() if name not in PRIVATE_FIELDS} for entry in files]
        return {
            "profile": self.profile,
            "key_fingerprint": self.key_fingerprint,
            **({"error": self.error} if self.error else {}),
            "summary": {
                "files": len(self.files),
                "anonymized": len(self.anonymized),
                "quarantined": len(self.quarantined),
            },
            "action_counts": dict(sorted(self.action_counts.items())),
            "files": files,
        }

    def to_json(self, *, private: bool = False) -> str:
        return json.dumps(self.to_dict(private=private), indent=2, ensure_ascii=False)

    def write(self, path, *, private: bool = False) -> Path:
        """Write the public report, or with `private=True` the organizer's private one."""
        path = Path(path)
        path.write_text(self.to_json(private=private) + "\n", encoding="utf-8")
        return path

    def write_uid_map(self, path) -> Path:
        """Write the old-to-new UID map (keep it private: it links back to the originals)."""
        if not self.uid_map_kept:
            raise ValueError("the UID map was not kept; run anonymize_tree(..., keep_uid_map=True)")
        path = Path(path)
        path.write_text(json.dumps(self.uid_map, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        return path
