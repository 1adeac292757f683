"""Speed of Mica's evaluator next to the references, side by side in one run.

    python benchmarks/evaluate.py            # the full sizes of issue 4
    python benchmarks/evaluate.py --quick    # reduced sizes (a minute or so on a laptop)

Prints, for each workload, the evaluator's time and the reference's, their ratio, the largest
difference between their numbers, the device, and the input bytes per second where meaningful.
MONAI is used when it imports (``pip install -r benchmarks/requirements-evaluate.txt``).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import torch  # noqa: E402
from scipy import ndimage  # noqa: E402
from scipy.stats import rankdata  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

import evaluator  # noqa: E402
from evaluator import classification as C, detection as D, segmentation as S, statistics as St  # noqa: E402
# The straightforward loop the tests check rsna_map against is the reference timed here too.
from tests.evaluator.test_detection import map_loop  # noqa: E402

DEVICE = evaluator.pick_device()


def timed(f, *a, repeat=1, **k):
    best, out = math.inf, None
    for _ in range(repeat):
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = f(*a, **k)
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best, out


def row(what, ours, ref, ref_name, diff=None, nbytes=None, note=""):
    ratio = ref / ours if ours > 0 else math.inf
    gbs = f"{nbytes / ours / 1e9:7.2f} GB/s" if nbytes else " " * 12
    d = f"max |diff| {diff:.1e}" if diff is not None else ""
    print(f"  {what:<44} evaluator {ours:8.3f} s | {ref_name:<28} {ref:9.3f} s | x{ratio:7.1f} | {gbs} {d} {note}")


# ----------------------------------------------------------------------------- references
def delong_numpy(y, s):
    """The widely used O(n log n) numpy DeLong (Sun & Xu midranks with scipy.stats.rankdata)."""
    pos, neg = s[y == 1], s[y == 0]
    m, n = len(pos), len(neg)
    tx, ty, tz = rankdata(pos), rankdata(neg), rankdata(np.concatenate([pos, neg]))
    auc = (tz[:m].sum() - m * (m + 1) / 2) / (m * n)
    v01 = (tz[:m] - tx) / n
    v10 = 1.0 - (tz[m:] - ty) / m
    var = v01.var(ddof=1) / m + v10.var(ddof=1) / n
    h = 1.959963984540054 * math.sqrt(var)
    return auc, max(0, auc - h), min(1, auc + h)


def delong_quadratic(y, s):
    """DeLong by its definition: the m × n comparison matrix, in blocks."""
    X, Y = s[y == 1], s[y == 0]
    v10 = np.empty(len(X))
    for i in range(0, len(X), 2000):
        b = X[i:i + 2000, None]
        v10[i:i + 2000] = ((b > Y[None, :]) + 0.5 * (b == Y[None, :])).mean(1)
    v01 = np.empty(len(Y))
    for j in range(0, len(Y), 2000):
        b = Y[None, j:j + 2000]
        v01[j:j + 2000] = ((X[:, None] > b) + 0.5 * (X[:, None] == b)).mean(0)
    auc = v10.mean()
    return auc, v10.var(ddof=1) / len(X) + v01.var(ddof=1) / len(Y)


def seg_reference(t, p, spacing, tol):
    """Dice + HD95 (MONAI's definition) + NSD (DeepMind's algorithm) with scipy on the whole volume."""
    dice = 2 * (t & p).sum() / (t.sum() + p.sum())
    st, sp = t ^ ndimage.binary_erosion(t), p ^ ndimage.binary_erosion(p)
    d1 = ndimage.distance_transform_edt(~st, sampling=spacing)[sp]
    d2 = ndimage.distance_transform_edt(~sp, sampling=spacing)[st]
    hd = max(np.percentile(d1, 95), np.percentile(d2, 95))
    table = S.surfel_measure_table(tuple(spacing))
    k = np.array([[[128, 64], [32, 16]], [[8, 4], [2, 1]]])
    ct = ndimage.correlate(np.pad(t, 1).astype(np.uint8), k, mode="constant")
    cp = ndimage.correlate(np.pad(p, 1).astype(np.uint8), k, mode="constant")
    bt, bp = (ct != 0) & (ct != 255), (cp != 0) & (cp != 255)
    dt = ndimage.distance_transform_edt(~bp, sampling=spacing)[bt]
    dp = ndimage.distance_transform_edt(~bt, sampling=spacing)[bp]
    at, ap = table[ct[bt]], table[cp[bp]]
    nsd = (at[dt <= tol].sum() + ap[dp <= tol].sum()) / (at.sum() + ap.sum())
    return dice, hd, nsd


def volume(rng, shape, centre_jitter=0.0):
    """An organ-like blob: a noisy ellipsoid occupying part of the volume."""
    zz, yy, xx = [np.arange(n, dtype=np.float32) for n in shape]
    c = np.array(shape) / 2 + rng.normal(0, centre_jitter, 3)
    r = np.array(shape) * np.array([0.18, 0.2, 0.25])
    d = (((zz[:, None, None] - c[0]) / r[0]) ** 2 + ((yy[None, :, None] - c[1]) / r[1]) ** 2
         + ((xx[None, None, :] - c[2]) / r[2]) ** 2)
    noise = ndimage.zoom(rng.normal(0, 0.15, tuple(max(2, n // 16) for n in shape)), 16, order=1)
    noise = noise[: shape[0], : shape[1], : shape[2]]
    return d + noise[: d.shape[0], : d.shape[1], : d.shape[2]] < 1.0


# ----------------------------------------------------------------------------- workloads
def bench_auc(n):
    print(f"\nAUC with DeLong 95% CI, {n:,} cases")
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, n)
    s = np.clip(rng.normal(0.4 + 0.2 * y, 0.2), 0, 1).round(4)  # with ties
    ours_t, ours = timed(C.auc_confidence_interval, y, s, repeat=2)
    sk_t, sk = timed(roc_auc_score, y, s)
    ref_t, ref = timed(delong_numpy, y, s)
    row("auc + CI (torch, O(n log n))", ours_t, sk_t, "sklearn roc_auc_score (AUC)", abs(ours[0] - sk),
        nbytes=s.nbytes + y.nbytes)
    row("auc + CI", ours_t, ref_t, "numpy rankdata DeLong", float(np.max(np.abs(np.subtract(ours, ref)))))
    n2 = 20_000
    t2, _ = timed(lambda: delong_quadratic(y[:n2], s[:n2]))
    print(f"  (a straightforward O(m·n) DeLong takes {t2:.2f} s on {n2:,} cases: about "
          f"{t2 * (n / n2) ** 2 / 60:.0f} min extrapolated to {n:,}, x{t2 * (n / n2) ** 2 / ours_t:,.0f})")


def bench_map(n_img):
    print(f"\nRSNA pneumonia mAP, {n_img:,} images")
    rng = np.random.default_rng(1)
    truth, preds = [], []
    for _ in range(n_img):
        k = rng.choice([0, 0, 1, 2, 3])
        t = np.c_[rng.uniform(0, 800, (k, 2)), rng.uniform(50, 300, (k, 2))]
        near = t[rng.random(k) < 0.8]
        near = np.abs(near + rng.normal(0, 20, near.shape))
        q = rng.integers(0, 3)
        noise = np.c_[rng.uniform(0, 800, (q, 2)), rng.uniform(50, 300, (q, 2))]
        b = np.vstack([near, noise])
        truth.append(t)
        preds.append(np.c_[rng.random(len(b)).round(2), b])
    ours_t, ours = timed(D.rsna_map, truth, preds, repeat=2)
    ref_t, ref = timed(map_loop, truth, preds)
    row("map (torch, vectorized over images)", ours_t, ref_t, "python loop", abs(ours - ref))


def bench_segmentation(n_vol, shape, monai_ok):
    print(f"\nDice + HD95 + NSD (τ = 2 mm), {n_vol} volumes of {shape[0]}x{shape[1]}x{shape[2]}, spacing 0.8x0.8x2.5 mm")
    spacing = (0.8, 0.8, 2.5)
    ours_t = ref_t = mon_t = 0.0
    diff = 0.0
    mon_diff_hd = 0.0
    nbytes = 0
    for i in range(n_vol):
        rng = np.random.default_rng(100 + i)
        t = volume(rng, shape)
        p = volume(rng, shape, centre_jitter=2.0)
        nbytes += t.nbytes + p.nbytes
        dt, ours = timed(S.case_metrics, t, p, spacing, tolerance=2.0)
        ours_t += dt
        dt, ref = timed(seg_reference, t, p, spacing, 2.0)
        ref_t += dt
        diff = max(diff, abs(ours["dice"] - ref[0]), abs(ours["hd95"] - ref[1]), abs(ours["nsd"] - ref[2]))
        if monai_ok:
            from monai.metrics import compute_dice, compute_hausdorff_distance, compute_surface_dice

            def run_monai():
                yp = torch.as_tensor(p)[None, None].float()
                yt = torch.as_tensor(t)[None, None].float()
                return (compute_dice(yp, yt), compute_hausdorff_distance(yp, yt, percentile=95, spacing=spacing),
                        compute_surface_dice(yp, yt, class_thresholds=[2.0], spacing=spacing, use_subvoxels=True))

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dt, mon = timed(run_monai)
            mon_t += dt
            mon_diff_hd = max(mon_diff_hd, abs(float(mon[1]) - ours["hd95"]))
    row("dice+hd95+nsd", ours_t, ref_t, "scipy per-volume loop", diff, nbytes=nbytes)
    if monai_ok:
        row("dice+hd95+nsd", ours_t, mon_t, "MONAI (subvoxel NSD)", mon_diff_hd, note="(diff: HD95; MONAI is float32)")


def bench_bootstrap(teams, cases, reps):
    print(f"\nBootstrap 95% CIs, {teams} teams x {cases:,} cases x {reps:,} replicates")
    rng = np.random.default_rng(2)
    x = rng.random((teams, cases))
    ours_t, ours = timed(St.bootstrap_ci, x, n_resamples=reps)
    idx = St.bootstrap_indices(cases, reps, 0).numpy()

    def loop():
        means = np.empty((teams, reps))
        for r in range(reps):
            means[:, r] = x[:, idx[r]].mean(1)
        return np.quantile(means, [0.025, 0.975], axis=1)

    ref_t, ref = timed(loop)
    row("mean metric (Dice, |error|)", ours_t, ref_t, "numpy loop over replicates",
        float(np.max(np.abs(np.array(ours) - ref))), nbytes=x.nbytes)
    y = rng.integers(0, 2, cases)
    s = np.clip(x * 0.8 + 0.2 * y, 0, 1)
    auc_t, (lo, hi) = timed(St.bootstrap_auc_ci, y, s, n_resamples=reps)
    k = max(1, reps // 50)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    ip = pos[St.bootstrap_indices(len(pos), reps, 0).numpy()]
    ineg = neg[St.bootstrap_indices(len(neg), reps, 1).numpy()]

    def auc_loop():
        out = np.empty((teams, k))
        for r in range(k):
            i = np.concatenate([ip[r], ineg[r]])
            for t in range(teams):
                out[t, r] = roc_auc_score(y[i], s[t, i])
        return out

    part_t, part = timed(auc_loop)
    ref_auc_t = part_t * reps / k
    _, _, our_reps = St.bootstrap_auc_ci(y, s[:, :], n_resamples=k, return_replicates=True)
    row("stratified AUC", auc_t, ref_auc_t, "sklearn loop (extrapolated)", float(np.max(np.abs(our_reps - part))),
        note=f"(loop timed on {k} replicates)")


def bench_mask_zip(n_vol, shape):
    """Validating a participant's .zip of masks in place, next to unpacking it first (the old way)."""
    import shutil
    import tempfile
    import tracemalloc
    import zipfile

    import nibabel as nib

    print(f"\nValidate a .zip of {n_vol} NIfTI masks of {shape[0]}x{shape[1]}x{shape[2]} against the truth's facts")
    with tempfile.TemporaryDirectory() as tmp:
        folder = os.path.join(tmp, "masks")
        os.mkdir(folder)
        for i in range(n_vol):
            m = volume(np.random.default_rng(i), shape).astype(np.uint8)
            nib.save(nib.Nifti1Image(m, np.diag([0.8, 0.8, 2.5, 1.0])), os.path.join(folder, f"case{i}.nii.gz"))
        archive = os.path.join(tmp, "upload.zip")
        with zipfile.ZipFile(archive, "w") as z:
            for f in sorted(os.listdir(folder)):
                z.write(os.path.join(folder, f), f"results/{f}")
        facts = evaluator.describe_truth("segmentation", folder)

        def unpack_then_validate():
            out = os.path.join(tmp, "unpacked")
            with zipfile.ZipFile(archive) as z:
                z.extractall(out)
            evaluator.validate("segmentation", os.path.join(out, "results"), truth_info=facts)
            shutil.rmtree(out)

        ours_t, _ = timed(evaluator.validate, "segmentation", archive, truth_info=facts, name="upload.zip")
        ref_t, _ = timed(unpack_then_validate)
        tracemalloc.start()
        evaluator.validate("segmentation", archive, truth_info=facts, name="upload.zip")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        row("validate in place", ours_t, ref_t, "extractall, then the folder", nbytes=os.path.getsize(archive),
            note=f"(peak traced memory {peak / 2**20:.1f} MiB; one mask is {np.prod(shape) / 2**20:.1f} MiB)")


def bench_split(n):
    from sklearn.model_selection import StratifiedGroupKFold

    print(f"\nPublic/private split of {n:,} cases, 4 strata, patients of 1-3 cases")
    rng = np.random.default_rng(4)
    ids = [f"c{i}" for i in range(n)]
    strata = {c: f"s{rng.integers(0, 4)}" for c in ids}
    groups = {c: f"p{i // int(rng.integers(1, 4))}" for i, c in enumerate(ids)}

    def sklearn_split():
        folds = StratifiedGroupKFold(2, shuffle=True, random_state=0)
        return next(folds.split(np.zeros(n), [strata[c] for c in ids], [groups[c] for c in ids]))[1]

    def imbalance(private):
        return sum(abs(sum(c in private for c in ids if strata[c] == s) - n_s / 2)
                   for s, n_s in zip(*np.unique(list(strata.values()), return_counts=True)))

    ours_t, ours = timed(evaluator.split_cases, ids, strata=strata, groups=groups, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref_t, ref = timed(sklearn_split)
    mine = imbalance({c for c, part in ours.items() if part == "private"})
    theirs = imbalance({ids[i] for i in ref})
    row("split_cases (stratified, grouped)", ours_t, ref_t, "StratifiedGroupKFold(2)",
        note=f"(cases off target, summed over strata: {mine:g} vs {theirs:g})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="reduced sizes")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's choice). On a shared, busy machine 1 is "
                         "often fastest: every parallel op waits for its slowest thread.")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        import monai  # noqa: F401

        monai_ok, monai_note = True, f"MONAI {monai.__version__}"
    except Exception as exc:  # any import problem: skip, and say so
        monai_ok, monai_note = False, f"MONAI not available ({type(exc).__name__})"
    name = torch.cuda.get_device_name() if DEVICE.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    print(f"device: {DEVICE} ({name}, torch threads {torch.get_num_threads()}); torch {torch.__version__}; {monai_note}"
          f"{'; QUICK sizes' if args.quick else ''}")
    if args.quick:
        bench_auc(100_000)
        bench_map(3_000)
        bench_segmentation(3, (128, 128, 64), monai_ok)
        bench_bootstrap(10, 2_000, 200)
        bench_mask_zip(5, (128, 128, 64))
        bench_split(10_000)
    else:
        bench_auc(1_000_000)
        bench_map(30_000)
        bench_segmentation(50, (256, 256, 128), monai_ok)
        bench_bootstrap(50, 10_000, 1_000)
        bench_mask_zip(50, (256, 256, 128))
        bench_split(150_000)


if __name__ == "__main__":
    main()
