"""Speed of Mica's curation library next to the references, on a large reading project.

    python benchmarks/curation.py            # 20,000 cases
    python benchmarks/curation.py --quick    # 2,000 cases

Prints, for each workload, curation's time and the reference's, their ratio and the largest
difference between their numbers: Fleiss' kappa (statsmodels), Krippendorff's alpha with missing
answers (the krippendorff package), the reader-by-reader kappa matrix (scikit-learn, pair by
pair), box fusion (ensemble-boxes called directly), the assignment of the cases, and DICOM → PNG
(next to pydicom's windowing and a PIL save) and PNG → DICOM of 2048² radiographs.
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

import krippendorff  # noqa: E402
from ensemble_boxes import weighted_boxes_fusion  # noqa: E402
from sklearn.metrics import cohen_kappa_score  # noqa: E402
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa  # noqa: E402

import curation  # noqa: E402


def timed(f, *a, **k):
    t0 = time.perf_counter()
    out = f(*a, **k)
    return time.perf_counter() - t0, out


def row(what, ours, ref, ref_name, diff=None):
    ratio = ref / ours if ours > 0 else math.inf
    d = f"max |diff| {diff:.1e}" if diff is not None else ""
    print(f"  {what:<40} curation {ours:8.3f} s | {ref_name:<24} {ref:8.3f} s | x{ratio:6.2f} {d}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_cases = 2_000 if args.quick else 20_000
    rng = np.random.default_rng(0)
    readers = [f"reader{i:02d}" for i in range(12)]
    truth = rng.integers(0, 4, n_cases)

    def answer(t):
        return int(t) if rng.random() < 0.7 else int(rng.integers(0, 4))

    print(f"{n_cases:,} cases, {len(readers)} readers")
    # Fleiss: 3 readers on every case, as an assignment with readers_per_case=3 gives
    queues = curation.assign([f"c{i}" for i in range(n_cases)], readers, 3, seed=1)
    fleiss_table = {f"c{i}": {} for i in range(n_cases)}
    for reader, queue in queues.items():
        for case_id, _ in queue:
            fleiss_table[case_id][reader] = answer(truth[int(case_id[1:])])
    ours, got = timed(curation.fleiss_kappa, fleiss_table)
    ref, want = timed(lambda: fleiss_kappa(aggregate_raters(np.array([list(r.values()) for r in fleiss_table.values()]))[0]))
    row("Fleiss' kappa (3 readers per case)", ours, ref, "statsmodels", abs(got - want))

    # Krippendorff: every reader, 40% of answers missing
    alpha_table = {f"c{i}": {r: answer(t) for r in readers if rng.random() > 0.4} for i, t in enumerate(truth)}
    def reference_alpha(level):  # from the same table: the reference's input array is built in the timing
        data = np.array([[row_.get(r, np.nan) for row_ in alpha_table.values()] for r in readers], dtype=float)
        return krippendorff.alpha(reliability_data=data, level_of_measurement=level)

    for level in ("nominal", "ordinal", "interval"):
        ours, got = timed(curation.krippendorff_alpha, alpha_table, level=level)
        ref, want = timed(reference_alpha, level)
        row(f"Krippendorff's alpha ({level})", ours, ref, "krippendorff", abs(got - want))

    # the reader-by-reader matrix of quadratic-weighted kappas
    ours, matrix = timed(curation.pairwise_kappa, alpha_table, weights="quadratic", categories=[0, 1, 2, 3])

    def sklearn_matrix():
        out = np.full((len(readers), len(readers)), np.nan)
        for i, a in enumerate(matrix.readers):
            for j, b in enumerate(matrix.readers):
                common = [r for r in alpha_table.values() if a in r and b in r]
                out[i, j] = cohen_kappa_score([r[a] for r in common], [r[b] for r in common],
                                              labels=[0, 1, 2, 3], weights="quadratic")
        return out
    ref, want = timed(sklearn_matrix)
    row("kappa matrix, 12 readers (quadratic)", ours, ref, "scikit-learn pair by pair",
        float(np.nanmax(np.abs(matrix.values - want))))

    # box fusion: 3 readers per image, 0-3 lesions each, on a tenth of the cases
    n_images = n_cases // 10
    boxes, sizes = {}, {}
    for i in range(n_images):
        lesions = rng.uniform(50, 600, (int(rng.integers(0, 4)), 2))
        boxes[f"c{i}"] = {r: [[x + rng.normal(0, 5), y + rng.normal(0, 5), 150 + rng.normal(0, 8), 200 + rng.normal(0, 8)]
                              for x, y in lesions if rng.random() < 0.8] for r in readers[:3]}
        sizes[f"c{i}"] = (1024, 1024)
    ours, fused = timed(curation.fuse_boxes, boxes, sizes, min_readers=1)

    def direct():
        out = {}
        for c, row_ in boxes.items():
            lists = [np.array([[x / 1024, y / 1024, (x + w) / 1024, (y + h) / 1024] for x, y, w, h in b]).reshape(-1, 4)
                     for b in row_.values()]
            out[c] = weighted_boxes_fusion(lists, [np.ones(len(b)) for b in lists], [np.zeros(len(b)) for b in lists],
                                           iou_thr=0.5, conf_type="box_and_model_avg")[0] * 1024
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref, want = timed(direct)
    diff = max((float(np.abs(np.sort(f.boxes[:, 0]) - np.sort(want[c][:, 0])).max(initial=0))
                for c, f in fused.items()), default=0.0)
    row(f"box fusion, {n_images:,} images x 3 readers", ours, ref, "ensemble-boxes directly", diff)

    t, _ = timed(curation.assign, [f"c{i}" for i in range(n_cases * 5)], readers, 3, reread_fraction=0.1, seed=2)
    print(f"  {'assign ' + format(n_cases * 5, ',') + ' cases, 3 readers each':<40} curation {t:8.3f} s")

    convert_images(n_images=10 if args.quick else 50)


def convert_images(n_images):
    """DICOM → PNG of 2048² 12-bit radiographs with a window (the participants' PNG download), next
    to pydicom's own windowing and a PIL save; and PNG → DICOM of the result."""
    import io
    import tempfile

    import pydicom
    from PIL import Image
    from pydicom.pixels import apply_voi_lut

    import anonymizer.synthetic
    from curation.images import dicom_to_png, png_to_dicom

    with tempfile.TemporaryDirectory() as folder:
        path = anonymizer.synthetic.write_radiograph(os.path.join(folder, "cr.dcm"), rows=2048, columns=2048)
        dataset = pydicom.dcmread(path)
        dataset.WindowCenter, dataset.WindowWidth = 2048, 4096
        dataset.save_as(path)
        ours, png = timed(lambda: [dicom_to_png(path) for _ in range(n_images)])

        def reference():
            for _ in range(n_images):
                ds = pydicom.dcmread(path)
                shown = apply_voi_lut(ds.pixel_array, ds).astype(float)
                out = io.BytesIO()
                Image.fromarray((shown / shown.max() * 65535).astype(np.uint16)).save(out, format="PNG")
        ref, _ = timed(reference)
        row(f"DICOM -> 16-bit PNG, {n_images} x 2048²", ours, ref, "pydicom apply_voi_lut + PIL")
        t, _ = timed(lambda: [png_to_dicom(png[0], patient_id="MICA-BENCH") for _ in range(n_images)])
        print(f"  {'PNG -> Secondary Capture, ' + str(n_images) + ' x 2048²':<40} curation {t:8.3f} s")


if __name__ == "__main__":
    main()
