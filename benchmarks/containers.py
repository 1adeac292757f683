"""The algorithm-container runner: start-to-outputs time, sandbox overhead, unpack time.

    python benchmarks/containers.py                       # 2 GiB image, 10 runs, 3 unpacks
    python benchmarks/containers.py --large-mb 256 --runs 5 --unpacks 2      # quick

1. start to outputs: ``evaluator.containers.run`` of a trivial busybox image (``/bin/busybox
   sh -c 'echo ok > /output/done'``), from the call to the return with /output written, under
   a cgroup (when this host lets us make one) and under rlimits;
2. the sandbox's overhead: the same command run directly (``subprocess.run``) on the same
   busybox, against (1);
3. unpack: ``load_image`` of a docker-archive of ``--large-mb`` MiB (a layer of 20,000 small
   files, like a Python environment, then layers of 16 MiB files, like weights and libraries),
   digests checked, written to disk.

Medians of several runs. Prints the load average before and after: the figures mean little
on a busy machine.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as a script, this folder comes first on the path, and its statistics.py (a benchmark)
# would shadow the standard library's module of that name.
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != ROOT / "benchmarks"]

import argparse  # noqa: E402
import hashlib  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from evaluator.containers import BwrapBackend, Limits, cgroup_support, load_image  # noqa: E402

BUSYBOX = Path("/bin/busybox")
SCRIPT = "echo ok > /output/done"


def _layer(path, entries):
    """Write a layer tar of (name, bytes or size) entries; returns its sha256."""
    with tarfile.open(path, "w") as tar:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
                continue
            info.size, info.mode = len(content), 0o755
            tar.addfile(info, io.BytesIO(content))
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def docker_archive(path, layers, cmd):
    """A docker-archive at ``path`` from layers given as entry iterables."""
    work = Path(tempfile.mkdtemp(dir=path.parent))
    diff_ids, names = [], []
    for i, entries in enumerate(layers):
        layer_path = work / f"{i}.tar"
        diff_ids.append(_layer(layer_path, entries))
        names.append(layer_path)
    config = json.dumps({"os": "linux", "architecture": "amd64", "config": {"Cmd": cmd, "Env": ["PATH=/bin"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + d for d in diff_ids]}}).encode()
    config_name = hashlib.sha256(config).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "Layers": [f"{d}/layer.tar" for d in diff_ids]}]).encode()
    with tarfile.open(path, "w") as tar:
        for d, layer_path in zip(diff_ids, names):
            tar.add(layer_path, arcname=f"{d}/layer.tar")
            layer_path.unlink()
        for name, data in ((config_name, config), ("manifest.json", manifest)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    shutil.rmtree(work)
    return path


def large_layers(total_mb):
    block = os.urandom(1 << 20)
    small = [("env", None)] + [(f"env/lib/m{i // 1000}/f{i}.py", block[i % 1000: i % 1000 + 4096])
                               for i in range(20_000)]
    small[1:1] = [(f"env/lib/m{k}", None) for k in range(20)]
    remaining = max(0, total_mb - 80) // 16
    per_layer = max(1, remaining // 2)

    def big(first, count):
        yield ("weights", None)
        for i in range(first, first + count):
            # Distinct content per file (a counter up front) so nothing dedupes or compresses away.
            yield (f"weights/w{i}.bin", i.to_bytes(8, "little") + block * 16)

    return [small, list(big(0, per_layer)), list(big(per_layer, remaining - per_layer))]


def median_time(fn, runs):
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--unpacks", type=int, default=3)
    p.add_argument("--large-mb", type=int, default=2048)
    args = p.parse_args(argv)
    print(f"load average before: {os.getloadavg()}; {os.cpu_count()} CPUs")
    root = Path(tempfile.mkdtemp(prefix="mica-bench-containers-"))
    try:
        trivial = docker_archive(root / "trivial.tar", [[("bin", None), ("bin/busybox", BUSYBOX.read_bytes())]],
                                 ["/bin/busybox", "sh", "-c", SCRIPT])
        image = load_image(trivial, root / "trivial")
        (root / "in").mkdir()
        (root / "out").mkdir()
        limits = Limits(wall_seconds=60, memory_bytes=256 * 1024**2, pids=64)
        modes = [("rlimits", False)] + ([("cgroup", True)] if cgroup_support() else [])

        direct_dir = root / "direct"
        direct_dir.mkdir()

        def direct():
            subprocess.run([str(BUSYBOX), "sh", "-c", SCRIPT.replace("/output", str(direct_dir))], check=True)
        direct_median, _ = median_time(direct, args.runs)
        print(f"direct (subprocess.run busybox sh): median {direct_median * 1000:.1f} ms over {args.runs} runs")
        for label, use_cgroups in modes:
            backend = BwrapBackend(use_cgroups=use_cgroups)

            def sandboxed():
                (root / "out" / "done").unlink(missing_ok=True)
                result = backend.run(image, root / "in", root / "out", limits)
                assert result.status == "succeeded" and (root / "out" / "done").read_text() == "ok\n", result
            m, times = median_time(sandboxed, args.runs)
            print(f"bwrap, {label}: start to outputs median {m * 1000:.1f} ms "
                  f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f}); "
                  f"overhead over direct {1000 * (m - direct_median):.1f} ms")

        t = time.perf_counter()
        large = docker_archive(root / "large.tar", large_layers(args.large_mb), ["/bin/true"])
        size = large.stat().st_size
        print(f"large image: {size / 1024**2:.0f} MiB docker-archive, 3 layers, "
              f"{20_000 + (max(0, args.large_mb - 80) // 16)} files (made in {time.perf_counter() - t:.0f} s)")
        times = []
        for i in range(args.unpacks):
            t = time.perf_counter()
            load_image(large, root / f"large-{i}", max_unpacked_bytes=2 * size)
            times.append(time.perf_counter() - t)
            shutil.rmtree(root / f"large-{i}")
        m = statistics.median(times)
        print(f"unpack (digests checked, then written): median {m:.1f} s over {args.unpacks} "
              f"({', '.join(f'{x:.1f}' for x in times)}); {size / 1024**2 / m:.0f} MiB/s")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
