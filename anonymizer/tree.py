"""anonymize_tree: every file of SRC anonymized into OUT, or quarantined with a reason."""

from __future__ import annotations

import contextlib
import filecmp
import hashlib
import logging
import os
import secrets
import re
import tempfile
import warnings
from collections import Counter
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path

from . import burned_in, images, inputs, keys
from .dicom import Quarantine, anonymize_dicom_file
from .writer import write_file
from .profile import Profile, get_profile
from .report import FileOutcome, Report

DICOM_PREAMBLE_BYTES = 128
# Without preamble and meta, a DICOM file starts with a tag of group 0002 or 0008, in either
# byte order; anything else is not tried as DICOM (pydicom's force=True would read noise).
HEADERLESS_DICOM_STARTS = (b"\x02\x00", b"\x08\x00", b"\x00\x02", b"\x00\x08")
IMAGES_FOLDER = "images"
# Outputs are written under this name first, then linked into place.
PARTIAL_PREFIX = ".partial-"
# Pending tasks per worker: enough to keep workers busy, few enough that memory stays flat.
PENDING_PER_WORKER = 4
# Files per task at most: each task costs the parent process about 0.3 ms of CPU (pickling,
# waiting, collecting), a tenth of a file's work, taken from the workers on a small machine.
MAX_FILES_PER_TASK = 8
# Per-upload limits (issue 20 measured 404 s for a zip of 100,000 tiny files, and 820 MB to
# decode a 157 KB 16-bit PNG of 9000 x 9000 pixels).
DEFAULT_MAX_FILES = 20_000
DEFAULT_MAX_DECODED_PIXELS = 50_000_000


@dataclass(frozen=True)
class Settings:
    key: bytes
    profile: Profile
    out: str
    keep_uid_map: bool
    burned_in_rules_path: str | None
    ocr: bool
    max_decoded_pixels: int
    run_token: str = ""  # names this run's OCR check in each worker process
    after_crash: bool = False  # files re-run alone after their worker died


def check_out_folder(out: Path) -> None:
    if out.exists():
        if not out.is_dir():
            raise ValueError(f"OUT {out} exists and is not a folder")
        if any(out.iterdir()):
            raise ValueError(f"OUT {out} is not empty; give a new or empty folder")
    else:
        out.mkdir(parents=True)


def list_inputs(src: Path) -> list[inputs.InputFile]:
    if not src.exists() and not src.is_symlink():
        raise FileNotFoundError(f"SRC {src} does not exist")
    if src.is_dir():
        return inputs.list_folder(src)
    if src.suffix.lower() == ".zip" or (src.is_file() and _is_zip(src)):
        return inputs.list_zip(src)
    raise ValueError(f"SRC {src} is neither a folder nor a .zip archive")


def _is_zip(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"PK\x03\x04"


def anonymize_tree(
    src,
    out,
    *,
    key: bytes,
    profile="basic",
    workers: int = 1,
    progress=None,
    keep_uid_map: bool = False,
    burned_in_rules=None,
    ocr: bool | None = None,
    max_files: int = DEFAULT_MAX_FILES,
    max_decoded_pixels: int = DEFAULT_MAX_DECODED_PIXELS,
) -> Report:
    """Anonymize every file of SRC (folder or .zip) into OUT and return the audit report.

    Files that cannot be made safe are not written; each is in the report with its reason.
    Raises (before writing anything) when SRC is missing, OUT is not empty, the key is too
    short, the profile is unknown or the burned-in rules file is invalid.
    `burned_in_rules`: path of an extra rules file (JSON, see burned_in_rules.json).
    `ocr`: read images with Tesseract and quarantine those where it finds text, after any
    rule (burned_in.ocr_scope says which: every PNG, JPEG, ultrasound, secondary capture,
    angiography, radiograph...; one image per series of CT, MR and the like). None (the
    default): on where Tesseract is installed; True: required; False: off.
    `max_files`: files (or zip entries) of one upload that are processed; the rest are
    quarantined with that reason, so a zip of 100,000 tiny files cannot hold a worker for long.
    `max_decoded_pixels`: an image is decoded (PNG and JPEG checks, burned-in cleaning, OCR)
    only when rows x columns x frames is at most this; a larger one is quarantined, so a small
    file that inflates to gigabytes cannot exhaust memory.
    """
    keys.check_key(key)
    chosen = get_profile(profile)
    src, out = Path(src), Path(out)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    rules_path = str(Path(burned_in_rules).resolve()) if burned_in_rules else None
    burned_in.rules_for(rules_path)  # fail now on a bad rules file, not in every worker
    if ocr and not burned_in.tesseract_available():
        raise ValueError("ocr=True needs Tesseract (Debian package tesseract-ocr), which is not installed")
    if ocr is None:
        ocr = burned_in.tesseract_available()
    if max_files < 1 or max_decoded_pixels < 1:
        raise ValueError("max_files and max_decoded_pixels must be at least 1")
    tasks = list_inputs(src)
    if len(tasks) > max_files:
        over = (f"over the limit of files per upload: this upload holds {len(tasks)} files and only the "
                f"first {max_files} are processed (max_files)")
        tasks = tasks[:max_files] + [replace(task, skip_reason=task.skip_reason or over) for task in tasks[max_files:]]
    check_out_folder(out)
    settings = Settings(key, chosen, str(out.resolve()), keep_uid_map, rules_path, ocr, max_decoded_pixels,
                        run_token=secrets.token_hex(16))
    report = Report(profile=chosen.name, key_fingerprint=keys.key_fingerprint(key), uid_map_kept=keep_uid_map)
    total = len(tasks)
    if progress:
        progress(0, total)

    try:
        if workers == 1 or total <= 1:
            results = []  # (index, result) so the report lists files in SRC order
            for index, task in enumerate(tasks):
                results.append((index, process_file(task, settings)))
                if progress:
                    progress(index + 1, total)
        else:
            results = _run_in_pool(tasks, settings, workers, progress)
    finally:
        inputs.close_archives()
    for _, (outcome, actions, uid_map) in sorted(results, key=lambda pair: pair[0]):
        report.add(outcome, actions, uid_map)
    return report


def _run_in_pool(tasks: list, settings: Settings, workers: int, progress) -> list:
    """Process the tasks in worker processes; a file that kills its worker is quarantined alone.

    When a worker dies (a decoder's segmentation fault, the kernel's out-of-memory killer),
    the pool breaks and every batch in flight is lost with it. Those batches are then run
    again one file per fresh process: the file that kills its process again is quarantined
    with that reason, the others get their normal outcome, and the run goes on.
    """
    total = len(tasks)
    # Small runs go one file per task, so that every worker gets a share.
    batch_size = max(1, min(MAX_FILES_PER_TASK, total // (workers * PENDING_PER_WORKER)))
    remaining = deque((start, tasks[start : start + batch_size]) for start in range(0, total, batch_size))
    results, done_count = [], 0
    while remaining:
        lost = []
        with ProcessPoolExecutor(max_workers=workers) as pool:
            pending = {}  # future -> (index of its batch's first file, batch)
            while (remaining or pending) and not lost:
                while remaining and len(pending) < workers * PENDING_PER_WORKER:
                    start, batch = remaining.popleft()
                    pending[pool.submit(process_batch, batch, settings)] = (start, batch)
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    start, batch = pending.pop(future)
                    try:
                        batch_results = future.result()
                    except BrokenProcessPool:
                        lost.append((start, batch))
                        continue
                    results.extend(enumerate(batch_results, start=start))
                    done_count += len(batch_results)
                    if progress:
                        progress(done_count, total)
            lost.extend(pending.values())  # in flight when the pool broke: lost with it
        if not lost:
            continue
        for leftover in Path(settings.out).rglob(PARTIAL_PREFIX + "*"):  # a dead worker's temporary file
            leftover.unlink(missing_ok=True)
        suspects = [(index, task) for start, batch in sorted(lost, key=lambda pair: pair[0])
                    for index, task in enumerate(batch, start=start)]
        for index, result in _process_one_at_a_time(suspects, replace(settings, after_crash=True)):
            results.append((index, result))
            done_count += 1
            if progress:
                progress(done_count, total)
    return results


def _process_one_at_a_time(suspects: list, settings: Settings):
    """Run files one at a time in a separate process: when it dies, the file it held is the
    cause and is quarantined alone; a fresh process takes the next file."""
    pool = ProcessPoolExecutor(max_workers=1)
    try:
        for index, task in suspects:
            try:
                yield index, pool.submit(process_file, task, settings).result()
            except BrokenProcessPool:
                pool.shutdown()
                pool = ProcessPoolExecutor(max_workers=1)
                outcome = FileOutcome(
                    keys.source_name(settings.key, task.source), "quarantined",
                    reason="the worker process died while processing this file (a decoder crash or "
                           "out of memory); review it by hand",
                    private_source=task.source,
                )
                yield index, (outcome, Counter(), {})
    finally:
        pool.shutdown()


@contextlib.contextmanager
def pydicom_silenced():
    """pydicom warns about invalid values by quoting them, and the values can be PHI:
    nothing of the kind may reach a log or a worker's stderr, so its warnings and its logger
    are muted while a file is processed (the report carries the reason instead)."""
    logger = logging.getLogger("pydicom")
    was_disabled = logger.disabled
    logger.disabled = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.disabled = was_disabled


def process_batch(batch: list[inputs.InputFile], settings: Settings) -> list:
    """process_file for each input of a batch, in order (one task for a worker)."""
    return [process_file(task, settings) for task in batch]


def process_file(task: inputs.InputFile, settings: Settings):
    """Anonymize one input; never raises for a bad file (the reason goes to the report)."""
    with pydicom_silenced():
        outcome, actions, uid_map = _process_file(task, settings)
    outcome = replace(outcome, source=keys.source_name(settings.key, task.source), private_source=task.source)
    return outcome, actions, uid_map


def _process_file(task: inputs.InputFile, settings: Settings):
    if task.skip_reason:
        return FileOutcome(task.source, "quarantined", reason=task.skip_reason), Counter(), {}
    try:
        if task.in_zip:
            with tempfile.TemporaryDirectory(prefix="mica-entry-") as folder:
                local = inputs.extract_entry(task.location, task.source, Path(folder) / "entry")
                return _process_local(task.source, local, settings)
        return _process_local(task.source, Path(task.location), settings)
    except Quarantine as error:
        return FileOutcome(task.source, "quarantined", reason=str(error), original=error.original), Counter(), {}
    except (inputs.UnsafeInput, images.ImageRejected) as error:
        return FileOutcome(task.source, "quarantined", reason=str(error)), Counter(), {}
    except MemoryError:
        return FileOutcome(task.source, "quarantined", reason="file too large to process in memory"), Counter(), {}
    except Exception as error:  # a bug or an input pydicom cannot handle: never fatal for the run
        reason = f"unexpected error ({type(error).__name__})"  # its message may quote values
        return FileOutcome(task.source, "quarantined", reason=reason), Counter(), {}


def sniff_kind(path: Path) -> str | None:
    with path.open("rb") as handle:
        head = handle.read(DICOM_PREAMBLE_BYTES + 4)
    if head.startswith(images.PNG_SIGNATURE):
        return "png"
    if head.startswith(images.JPEG_SIGNATURE):
        return "jpeg"
    if head[DICOM_PREAMBLE_BYTES : DICOM_PREAMBLE_BYTES + 4] == b"DICM":
        return "dicom"
    if head[:2] in HEADERLESS_DICOM_STARTS:
        return "dicom"
    if _parses_as_dicom(path):
        return "dicom"
    return None


def _parses_as_dicom(path: Path) -> bool:
    """Last resort for odd headerless files: pydicom reads it and finds a SOP Class UID."""
    import pydicom

    try:
        dataset = pydicom.dcmread(path, force=True, stop_before_pixels=True)
        sop_class = str(dataset.get("SOPClassUID", "") or "")
    except Exception:
        return False
    return sop_class.startswith("1.2.840.10008.5.1.4.1.1.")


def _process_local(source: str, path: Path, settings: Settings):
    kind = sniff_kind(path)
    if kind is None:
        raise Quarantine("not a DICOM, PNG or JPEG file")
    if kind == "dicom":
        return _process_dicom(source, path, settings)
    return _process_picture(source, path, kind, settings)


# A name Mica generated: `keys.keyed_uid` output. Output paths are made of these only.
GENERATED_UID = re.compile(r"2\.25\.[0-9]{1,39}")


def output_path(result) -> Path:
    """`<study>/<series>/<sop instance>.dcm`, from the new UIDs Mica generated, never a sender's."""
    parts = (result.study_uid, result.series_uid, result.sop_instance_uid)
    if not all(GENERATED_UID.fullmatch(part) for part in parts):
        raise Quarantine("internal check failed: an output path would not be made of generated UIDs")
    return Path(parts[0]) / parts[1] / f"{parts[2]}.dcm"


def _write_exclusive(out: Path, relative: Path, write, *, accept_identical: bool = False) -> None:
    """Create OUT/relative, never overwriting, never outside OUT, never half-written.

    The file is written under a temporary name and linked into place, so a worker killed
    while writing leaves no partial output under a real name. `accept_identical`: an existing
    file with exactly these bytes is this file's own output from a worker that died before
    reporting it (outputs are deterministic for a key), not a duplicate.
    """
    # OUT was resolved and empty when the run began, and Mica alone creates what is in it (no
    # links), so a normalised path inside it cannot lead out: no filesystem lookups needed.
    target = Path(os.path.normpath(out / relative))
    if target == out or not target.is_relative_to(out):
        raise Quarantine("internal check failed: an output path would leave OUT")
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f"{PARTIAL_PREFIX}{os.getpid()}-{secrets.token_hex(4)}"
    try:
        with open(temporary, "xb") as handle:
            write(handle)
        try:
            os.link(temporary, target)
        except FileExistsError:
            if not (accept_identical and filecmp.cmp(temporary, target, shallow=False)):
                raise Quarantine(f"duplicate: another input already produced {target.name}") from None
    finally:
        temporary.unlink(missing_ok=True)


def _process_dicom(source: str, path: Path, settings: Settings):
    result = anonymize_dicom_file(
        path,
        key=settings.key,
        profile=settings.profile,
        keep_uid_map=settings.keep_uid_map,
        burned_in_rules=burned_in.rules_for(settings.burned_in_rules_path),
        ocr=burned_in.ocr_check_for(settings.run_token) if settings.ocr else None,
        max_decoded_pixels=settings.max_decoded_pixels,
    )
    relative = output_path(result)

    try:
        _write_exclusive(Path(settings.out), relative, partial(write_file, dataset=result.dataset),
                         accept_identical=settings.after_crash)
    except Quarantine as error:
        error.original = result.original
        raise
    except Exception as error:
        unwritable = Quarantine(f"cannot be written after anonymization ({type(error).__name__}: invalid values?)")
        unwritable.original = result.original
        raise unwritable from None
    outcome = FileOutcome(
        source,
        "anonymized",
        output=relative.as_posix(),
        kind="dicom",
        patient_pseudonym=result.patient_pseudonym,
        study_uid=result.study_uid,
        series_uid=result.series_uid,
        sop_instance_uid=result.sop_instance_uid,
        modality=result.modality,
        original=result.original,
    )
    return outcome, result.actions, result.uid_map


def _process_picture(source: str, path: Path, kind: str, settings: Settings):
    data = path.read_bytes()
    stripped, removed = images.strip_png(data) if kind == "png" else images.strip_jpeg(data)
    images.check_pixel_count(stripped, settings.max_decoded_pixels)
    images.check_decodes(stripped, kind)
    if settings.ocr:
        from .preview import render_preview

        with tempfile.NamedTemporaryFile(suffix="." + kind) as handle:
            handle.write(stripped)
            handle.flush()
            words = burned_in.ocr_words(render_preview(handle.name, max_size=2048))
        if words:
            raise Quarantine(f"burned-in text: OCR read {len(words)} word(s) in the pixels; review the image")
    digest = hashlib.sha256(stripped).hexdigest()
    suffix = ".png" if kind == "png" else ".jpg"
    relative = Path(IMAGES_FOLDER) / (keys.keyed_file_name(settings.key, digest) + suffix)
    _write_exclusive(Path(settings.out), relative, lambda handle: handle.write(stripped),
                     accept_identical=settings.after_crash)
    actions = Counter({f"{kind} metadata removed": removed, **({"pixels read by OCR": 1} if settings.ocr else {})})
    return FileOutcome(source, "anonymized", output=relative.as_posix(), kind=kind), actions, {}
