"""Anonymizer speed and memory, side by side with a plain pydicom copy, deid and dicognito.

    .venv/bin/python benchmarks/anonymize.py                # 500 CT slices of 512x512, 16-bit
    .venv/bin/python benchmarks/anonymize.py --slices 2000 --repeat 7
    .venv/bin/python benchmarks/anonymize.py --quick        # 200 slices, for a smoke run
    .venv/bin/python benchmarks/anonymize.py --instructions 100   # and instruction counts (valgrind)

Every measurement runs in a fresh subprocess, so its peak RSS is its own. Each figure is the
median of --repeat runs, taken in interleaved rounds (every tool once per round), and the
machine's load average (`uptime`) is printed before and after every round: on a shared
machine other work slows every tool, and the median with the load says how much. Figures:
- files/s for Mica (workers 1 and 2, OCR on by default where Tesseract is installed; and
  workers 1 with OCR off), for the floor (pydicom read + write of the same files,
  nothing changed), for deid (its default "dicom" recipe) and dicognito (its defaults);
- Mica's peak RSS as the number of files grows (a quarter, half, all of the slices);
- scaling from 1 to 2 workers;
- with --instructions N, the instructions the floor and Mica execute on N of the slices,
  counted by valgrind's callgrind (the imports, counted alone, are subtracted): a figure that
  the machine's load does not move, though it leaves out the kernel's time (file system
  calls) and waiting on memory, which CPU time includes.
deid and dicognito come from benchmarks/requirements-anonymize.txt; a tool that is not
installed is reported as skipped.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PATIENTS = 10  # slices are spread over this many patients (one series each)


def generate(folder: Path, slices: int) -> list[Path]:
    from anonymizer import synthetic

    paths = []
    per_patient = max(1, slices // PATIENTS)
    index = 0
    while len(paths) < slices:
        count = min(per_patient, slices - len(paths))
        paths += synthetic.write_ct_series(
            folder / f"patient{index:03d}", n_slices=count, patient_id=f"PID-{index:06d}",
            patient_name=f"DOE^PATIENT{index}", size=512, private_tags=True,
        )
        index += 1
    return sorted(paths)


# --- one measurement, inside its own process -------------------------------------------------

def copy_one(job: tuple[Path, Path]) -> None:
    import pydicom

    path, target = job
    pydicom.dcmread(path).save_as(target, enforce_file_format=True)


def run_floor(files: list[Path], out: Path, workers: int) -> None:
    jobs = [(path, out / f"{index}.dcm") for index, path in enumerate(files)]
    if workers == 1:
        for job in jobs:
            copy_one(job)
        return
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(copy_one, jobs, chunksize=16))


def stage_for_mica(files: list[Path], src: Path) -> Path:
    """anonymize_tree takes a folder: hard-link the chosen files into one, next to the source
    (not symlinks: Mica refuses to follow them), so the number of files can vary."""
    staged = src.parent / f"staged-{len(files)}"
    if not staged.exists():
        staged.mkdir()
        for index, path in enumerate(files):
            os.link(path, staged / f"{index}.dcm")
    return staged


def run_mica(staged: Path, out: Path, workers: int, ocr: bool | None) -> int:
    """Returns how many images OCR read (one per series per worker process by default)."""
    import anonymizer

    out.rmdir()  # anonymize_tree creates OUT itself
    report = anonymizer.anonymize_tree(staged, out, key=bytes(range(32)), workers=workers, ocr=ocr)
    assert not report.quarantined, report.quarantined[:3]
    return report.action_counts.get("pixels read by OCR", 0)


def run_deid(files: list[Path], out: Path) -> None:
    from deid.dicom import replace_identifiers

    replace_identifiers(dicom_files=[str(p) for p in files], save=True, output_folder=str(out),
                        remove_private=True)


def run_dicognito(files: list[Path], out: Path) -> None:
    import pydicom
    from dicognito.anonymizer import Anonymizer

    anonymizer = Anonymizer(seed="benchmark")
    for index, path in enumerate(files):
        dataset = pydicom.dcmread(path)
        anonymizer.anonymize(dataset)
        dataset.save_as(out / f"{index}.dcm")


def child(arguments) -> None:
    import warnings
    import logging

    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
    # Imports happen before the clock starts: a run's cost, not the interpreter's, is measured.
    import pydicom  # noqa: F401
    import anonymizer  # noqa: F401
    from anonymizer import text_checks

    # Like imports, the keep list's tables are loaded once per process (about 0.5 s: pydicom's
    # code tables); loaded before forking, workers share them.
    anonymizer.keep_list.keep_list(), text_checks.vocabulary(), text_checks.code_meanings()
    import scipy.ndimage  # noqa: F401  (OCR's preparation)

    if arguments.tool == "deid":
        import deid.dicom  # noqa: F401
    if arguments.tool == "dicognito":
        import dicognito.anonymizer  # noqa: F401
    files = sorted(Path(arguments.src).rglob("*.dcm"))[: arguments.count]
    out = Path(arguments.out)
    out.mkdir(parents=True)
    if arguments.tool.startswith("mica"):
        staged = stage_for_mica(files, Path(arguments.src))
    ocr_reads = 0
    started = time.perf_counter()
    cpu_started = cpu_seconds()
    if arguments.tool == "floor":
        run_floor(files, out, arguments.workers)
    elif arguments.tool == "mica":
        ocr_reads = run_mica(staged, out, arguments.workers, ocr=None)  # the default: OCR where installed
    elif arguments.tool == "mica-no-ocr":
        ocr_reads = run_mica(staged, out, arguments.workers, ocr=False)
    elif arguments.tool == "deid":
        run_deid(files, out)
    elif arguments.tool == "dicognito":
        run_dicognito(files, out)
    # "imports": nothing more, the baseline of count_instructions
    seconds = time.perf_counter() - started
    cpu = cpu_seconds() - cpu_started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "files": len(files), "peak_mib": peak_kib / 1024,
                      "worker_peak_mib": children_kib / 1024, "ocr_reads": ocr_reads}))


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (worker pools), user and system.

    On a machine shared with other work, wall time measures the others too; CPU time is
    what the run itself consumed, much less disturbed (caches and memory bandwidth are still
    shared)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def median_of(results: list[dict]) -> dict | None:
    """The run of median time, with the highest peak memory of all runs."""
    if not results:
        return None
    ordered = sorted(results, key=lambda result: result["seconds"])
    median = dict(ordered[(len(ordered) - 1) // 2])
    median["runs"] = [round(result["seconds"], 3) for result in results]
    cpu = sorted(result["cpu_seconds"] for result in results)
    median["median_cpu_seconds"] = cpu[(len(cpu) - 1) // 2]
    median["peak_mib"] = max(result["peak_mib"] for result in results)
    median["worker_peak_mib"] = max(result["worker_peak_mib"] for result in results)
    return median


def measure(tool: str, src: Path, scratch: Path, count: int, workers: int = 1, repeat: int = 1) -> dict | None:
    results = [measure_once(tool, src, scratch, count, workers) for _ in range(repeat)]
    return median_of([result for result in results if result])


def load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def measure_once(tool: str, src: Path, scratch: Path, count: int, workers: int) -> dict | None:
    os.sync()  # the previous run's dirty pages must not be flushed on this run's clock
    out = scratch / f"{tool}-{count}-{workers}"
    command = [sys.executable, __file__, "--child", tool, "--src", str(src), "--out", str(out),
               "--count", str(count), "--workers", str(workers)]
    completed = subprocess.run(command, capture_output=True, text=True)
    shutil.rmtree(out, ignore_errors=True)
    if completed.returncode != 0:
        print(f"  {tool} failed: {completed.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    return json.loads(completed.stdout.strip().splitlines()[-1])


def count_instructions(src: Path, scratch: Path, count: int) -> None:
    """Instructions executed by the floor and by Mica (OCR on, workers=1) on `count` slices,
    each less those of the imports alone; the three run side by side under callgrind."""
    if shutil.which("valgrind") is None:
        print("\ninstruction counts skipped: valgrind is not installed")
        return
    runs = {}
    for tool in ("imports", "floor", "mica"):
        out = scratch / f"instructions-{tool}"
        command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
                   "--child", tool, "--src", str(src), "--out", str(out), "--count", str(count)]
        runs[tool] = (out, subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True))
    collected = {}
    for tool, (out, process) in runs.items():
        _, errors = process.communicate()
        shutil.rmtree(out, ignore_errors=True)
        counts = [line.split()[-1] for line in errors.splitlines() if "Collected :" in line]
        if process.returncode != 0 or not counts:
            print(f"\ninstruction counts failed ({tool}): {errors.strip().splitlines()[-1:]}")
            return
        collected[tool] = int(counts[-1])
    floor, mica = (collected[tool] - collected["imports"] for tool in ("floor", "mica"))
    print(f"\ninstructions on {count} slices (callgrind, imports subtracted): floor {floor / 1e9:.3f} G, "
          f"Mica {mica / 1e9:.3f} G, Mica / floor {mica / floor:.2f}x")


def installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=500)
    parser.add_argument("--quick", action="store_true", help="200 slices")
    parser.add_argument("--repeat", type=int, default=5, help="runs per figure; the median is shown (default 5)")
    parser.add_argument("--data-dir", type=Path, help="where to generate the slices (default: a temp folder)")
    parser.add_argument("--out-dir", type=Path,
                        help="where the tools write (default: /dev/shm when present, so that the figures "
                             "measure the tools rather than the disk; pass a disk folder to include it)")
    parser.add_argument("--instructions", type=int, metavar="N",
                        help="also count the instructions of the floor and Mica on N slices (needs valgrind; "
                             "takes a few minutes for 100)")
    parser.add_argument("--child", dest="tool", help=argparse.SUPPRESS)
    parser.add_argument("--src", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--workers", type=int, default=1, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.tool:
        child(arguments)
        return

    slices = 200 if arguments.quick else arguments.slices
    base = arguments.data_dir or Path(tempfile.mkdtemp(prefix="mica-bench-"))
    src = base / "src"
    if arguments.out_dir:
        scratch = arguments.out_dir
    elif Path("/dev/shm").is_dir():
        scratch = Path(tempfile.mkdtemp(prefix="mica-bench-out-", dir="/dev/shm"))
    else:
        scratch = base / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    print(f"generating {slices} CT slices (512x512, 16-bit, PHI and private tags) in {src} ...")
    started = time.perf_counter()
    if src.exists():
        shutil.rmtree(src)
    generate(src, slices)
    size_mib = sum(p.stat().st_size for p in src.rglob("*.dcm")) / 2**20
    print(f"  {slices} files, {size_mib:.0f} MiB, generated in {time.perf_counter() - started:.1f} s")
    print(f"  machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; outputs written to {scratch}\n")

    configurations = [
        ("pydicom read+write (floor)", "floor", 1),
        ("floor, 2 processes", "floor", 2),
        ("Mica, workers=1", "mica", 1),
        ("Mica, workers=2", "mica", 2),
        ("Mica, workers=1, OCR off", "mica-no-ocr", 1),
        ("deid 0.4.13 (default recipe)", "deid", 1),
        ("dicognito 0.19.0", "dicognito", 1),
    ]
    # Rounds run every configuration once, in turn, so that other work on the machine
    # disturbs them alike; each figure is the median of its rounds.
    runs: dict[str, list[dict]] = {label: [] for label, _, _ in configurations}
    for round_number in range(arguments.repeat):
        before = load_average()
        for label, tool, workers in configurations:
            if tool in ("deid", "dicognito") and not installed(tool):
                continue
            result = measure_once(tool, src, scratch, slices, workers)
            if result:
                runs[label].append(result)
        print(f"  round {round_number + 1}: {before} before, {load_average()} after")
    rows = [(label, median_of(runs[label])) for label, _, _ in configurations]
    print()

    floor = rows[0][1]
    mica = rows[2][1]
    print(f"{'tool':32} {'files':>6} {'seconds':>8} {'files/s':>8} {'vs floor':>9} {'Mica x faster':>13} "
          f"{'CPU s':>7} {'CPU vs floor':>12} {'peak RSS MiB':>12}")
    for label, result in rows:
        if result is None:
            print(f"{label:32} {'skipped (not installed or failed)':>40}")
            continue
        rate = result["files"] / result["seconds"]
        vs_floor = result["seconds"] / floor["seconds"] if floor else float("nan")
        speedup = result["seconds"] / mica["seconds"] if mica else float("nan")
        peak = max(result["peak_mib"], result["worker_peak_mib"])
        cpu_vs_floor = result["median_cpu_seconds"] / floor["median_cpu_seconds"] if floor else float("nan")
        print(f"{label:32} {result['files']:>6} {result['seconds']:>8.2f} {rate:>8.1f} {vs_floor:>8.2f}x {speedup:>12.2f}x "
              f"{result['median_cpu_seconds']:>7.2f} {cpu_vs_floor:>11.2f}x {peak:>12.0f}")
        print(f"{'':32} runs (s): {result['runs']}"
              + (f"; images read by OCR: {result['ocr_reads']}" if result.get("ocr_reads") else ""))
    for index in (2, 4):  # Mica by default, and with OCR off
        if floor and rows[index][1]:
            label = rows[index][0]
            ratios = sorted(m["seconds"] / f["seconds"] for m, f in zip(runs[label], runs[rows[0][0]]))
            print(f"\n{label} / floor per round: {[round(r, 2) for r in ratios]}, "
                  f"median {ratios[(len(ratios) - 1) // 2]:.2f}x")
            cpu_ratios = sorted(m["cpu_seconds"] / f["cpu_seconds"] for m, f in zip(runs[label], runs[rows[0][0]]))
            print(f"{label} / floor CPU time per round: {[round(r, 2) for r in cpu_ratios]}, "
                  f"median {cpu_ratios[(len(cpu_ratios) - 1) // 2]:.2f}x")

    if all(result for _, result in rows[:4]):
        floor_scaling = rows[0][1]["seconds"] / rows[1][1]["seconds"]
        mica_scaling = rows[2][1]["seconds"] / rows[3][1]["seconds"]
        print(f"\nscaling 1 -> 2 processes: Mica {mica_scaling:.2f}x, plain pydicom {floor_scaling:.2f}x "
              f"(ideal 2.00x on {os.cpu_count()} CPUs; the floor's figure shows what the machine allows)")

    print("\nMica peak RSS as the number of files grows (workers=1):")
    print(f"{'files':>6} {'seconds':>8} {'files/s':>8} {'peak RSS MiB':>12}")
    for count in sorted({max(1, slices // 4), max(1, slices // 2), slices}):
        result = measure("mica", src, scratch, count, 1, arguments.repeat)
        if result:
            print(f"{count:>6} {result['seconds']:>8.2f} {result['files'] / result['seconds']:>8.1f} {result['peak_mib']:>12.0f}")
    if arguments.instructions:
        count_instructions(src, scratch, min(arguments.instructions, slices))
    if not arguments.data_dir:
        shutil.rmtree(base, ignore_errors=True)
    if not arguments.out_dir:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
