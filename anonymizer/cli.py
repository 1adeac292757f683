"""Command line: python -m anonymizer SRC OUT [--key-file F] [--profile basic] [--workers N]
[--report F] [--private-report F] [--uid-map F] [--burned-in-rules F] [--ocr|--no-ocr] [--max-files N] [--max-decoded-pixels N]."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import keys
from .inputs import UnreadableSource
from .profile import PROFILES
from .report import Report
from .tree import DEFAULT_MAX_DECODED_PIXELS, DEFAULT_MAX_FILES, anonymize_tree

EXIT_OK = 0
EXIT_FATAL = 2

DESCRIPTION = """\
Anonymize DICOM, PNG and JPEG files (DICOM PS3.15 Annex E Basic Profile, keyed UIDs and
pseudonyms). SRC is a folder (walked recursively) or a .zip; OUT is a new or empty folder.
Files that cannot be made safe are not written to OUT and are listed with their reason in the
report. Exit status 0 when every file was anonymized or quarantined with a reason; 2 on a fatal
error (SRC missing or not a readable zip, OUT not empty, bad key file).
"""

EPILOG = """\
Without --key-file, a new key is created next to the report (REPORT with the suffix .key)
and its path is printed: keep it, and pass it with --key-file on later uploads of the same
project so patients, UIDs and date shifts stay the same. The report names files by a keyed
hash (source) only and can be shown. The private report (REPORT with the suffix
.private.json unless --private-report says) also holds each file's path in SRC
(private_source) and the sender's identifiers (original: PatientID, IssuerOfPatientID,
AccessionNumber, Study/Series/SOP Instance UIDs); it and the UID map re-identify: keep them
private.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m anonymizer",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("src", metavar="SRC", type=Path, help="folder or .zip to anonymize")
    parser.add_argument("out", metavar="OUT", type=Path, help="new or empty output folder")
    parser.add_argument("--key-file", type=Path, help="project key (hex); created next to the report when omitted")
    parser.add_argument("--profile", default="basic", choices=sorted(PROFILES),
                        help="basic: Annex E Basic Profile with shifted dates, patient characteristics "
                             "and safe private tags (default); strict: Basic Profile, no option")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--report", type=Path, help="JSON report path (default: OUT.report.json beside OUT)")
    parser.add_argument("--private-report", type=Path,
                        help="the organizer's private report, with original paths and identifiers "
                             "(default: REPORT with the suffix .private.json)")
    parser.add_argument("--uid-map", type=Path, help="also write the old-to-new UID map here (keep it private)")
    parser.add_argument("--burned-in-rules", type=Path, help="extra JSON rules that blank burned-in text")
    parser.add_argument("--ocr", action=argparse.BooleanOptionalAction, default=None,
                        help="quarantine images where Tesseract reads text (default: on where Tesseract "
                             "is installed; --ocr requires it, --no-ocr turns it off)")
    parser.add_argument("--max-files", type=int, default=DEFAULT_MAX_FILES,
                        help=f"files of SRC processed; the rest are quarantined (default {DEFAULT_MAX_FILES})")
    parser.add_argument("--max-decoded-pixels", type=int, default=DEFAULT_MAX_DECODED_PIXELS,
                        help="images larger than this (rows x columns x frames) are quarantined rather "
                             f"than decoded (default {DEFAULT_MAX_DECODED_PIXELS})")
    return parser


def main(argv=None) -> int:
    arguments = build_parser().parse_args(argv)
    out = arguments.out
    report_path = arguments.report or out.parent / (out.name + ".report.json")
    try:
        # Checked here too, so that a run that cannot start does not leave a new key behind.
        if not arguments.src.exists():
            raise FileNotFoundError(f"SRC {arguments.src} does not exist")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise ValueError(f"OUT {out} is not an empty folder; give a new or empty folder")
        if arguments.key_file:
            key = keys.load_key(arguments.key_file)
        else:
            key_path = report_path.with_suffix(".key")
            report_path.parent.mkdir(parents=True, exist_ok=True)
            key = keys.new_key_file(key_path)
            print(f"created a new key: {key_path} (keep it; pass --key-file next time)", file=sys.stderr)
        if arguments.workers < 1:
            raise ValueError("--workers must be at least 1")
        with ProgressBar() as bar:
            report = anonymize_tree(
                arguments.src,
                out,
                key=key,
                profile=arguments.profile,
                workers=arguments.workers,
                progress=bar.update,
                keep_uid_map=arguments.uid_map is not None,
                burned_in_rules=arguments.burned_in_rules,
                ocr=arguments.ocr,
                max_files=arguments.max_files,
                max_decoded_pixels=arguments.max_decoded_pixels,
            )
    except UnreadableSource as error:  # the run started: the report says why it stopped
        Report(profile=arguments.profile, key_fingerprint=keys.key_fingerprint(key), error=str(error)).write(report_path)
        print(f"error: {error}; report: {report_path}", file=sys.stderr)
        return EXIT_FATAL
    except (keys.KeyFileError, FileNotFoundError, FileExistsError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_FATAL
    report.write(report_path)
    report.write(arguments.private_report or report_path.with_suffix(".private.json"), private=True)
    if arguments.uid_map:
        report.write_uid_map(arguments.uid_map)
    print(
        f"{len(report.anonymized)} anonymized, {len(report.quarantined)} quarantined; "
        f"report: {report_path}",
        file=sys.stderr,
    )
    for outcome in report.quarantined[:20]:
        print(f"  quarantined {outcome.source}: {outcome.reason}", file=sys.stderr)
    if len(report.quarantined) > 20:
        print(f"  ... and {len(report.quarantined) - 20} more (see the report)", file=sys.stderr)
    return EXIT_OK


class ProgressBar:
    """A tqdm bar on a terminal; nothing when stderr is a pipe or a file."""

    def __init__(self):
        self.bar = None

    def __enter__(self):
        return self

    def update(self, done: int, total: int) -> None:
        if not sys.stderr.isatty():
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="file", file=sys.stderr)
        self.bar.update(done - self.bar.n)

    def __exit__(self, *exc_info):
        if self.bar is not None:
            self.bar.close()
        return False
