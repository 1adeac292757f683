"""Speed of the leaderboard statistics (issue 13) next to the straightforward loops.

    python benchmarks/statistics.py                     # 1,000 teams × 10,000 cases × 2,000 replicates
    python benchmarks/statistics.py --teams 100 --cases 2000 --replicates 500   # quick

Workloads, each the vectorized code against the loop one would write first:

1. intervals of a per-case mean (Dice, MAE...) for every team: ``bootstrap_ci`` (one matrix
   product of resample counts) against ``bootstrap_metric_ci(np.mean, ...)`` (a loop over
   replicates), team by team;
2. the classification intervals ``evaluator.score`` adds for one submission (AUC, average
   precision, sensitivity, specificity, stratified): ``weighted_binary_metrics`` against
   scikit-learn on each resample;
3. rank stability with the mean (``rank_stability(method="mean")``) and with
   rank-then-aggregate, against a loop that resamples the cases, ranks again and computes
   Kendall's τ replicate by replicate;
4. an AUC board's rank stability: every team's AUC on every bootstrap sample, ``weighted_aucs``
   (all teams at once) against ``weighted_binary_metrics`` team by team (how ``compare`` did it
   before), then the whole ``evaluator.compare`` of the board. The deadline's board:
   ``--only 4 --teams 1400 --cases 3000 --replicates 1000``.

The loops are too slow to run in full: each is timed on a subset (of teams or of replicates,
printed) and scaled linearly, which is fair because their cost is linear in both. Every figure
is the median of ``--repeat`` runs. The load average is printed before and after: on a shared
machine (this one has 2 cores) the figures mean little without it.

Figures (2 cores shared by 8 engineers, load average 3.7-4.8 throughout, ``--threads 1``,
1,000 × 10,000 × 2,000, median of 3): intervals of a per-case mean 1.5 s against 234 s (154×);
one submission's classification intervals 0.23 s against 8.9 s (38×; 2.1 s, 4.4×, before
``weighted_binary_metrics`` read its cumulative sums only at the tie groups, in cache-sized
chunks); rank stability with the mean 4.9 s against 182 s (37×), with rank-then-aggregate
8.6 s against 4,082 s (474×). The table is in evaluator/README.md.
"""

from __future__ import annotations

import os
import sys

# Run as a script, this file's folder comes first on sys.path, where its name would hide the
# standard library's ``statistics`` from every module: put the repository there instead.
sys.path[0] = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")

import argparse  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import torch  # noqa: E402
from scipy.stats import kendalltau, rankdata  # noqa: E402
from sklearn.metrics import average_precision_score, roc_auc_score  # noqa: E402

from evaluator import statistics as S  # noqa: E402


def timed(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times)), times


def load():
    return "load average {:.2f} {:.2f} {:.2f} on {} cores".format(*os.getloadavg(), os.cpu_count())


def report(name, fast, slow, scale, what):
    print(f"{name}\n  vectorized {fast[0]:8.2f} s  (runs {', '.join(f'{t:.2f}' for t in fast[1])})\n"
          f"  loop       {slow[0] * scale:8.2f} s  (measured {slow[0]:.2f} s on {what}, × {scale:g})\n"
          f"  speed-up   {slow[0] * scale / fast[0]:8.1f} ×", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--teams", type=int, default=1000)
    ap.add_argument("--cases", type=int, default=10_000)
    ap.add_argument("--replicates", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--loop-teams", type=int, default=5, help="teams the interval loop is timed on")
    ap.add_argument("--loop-replicates", type=int, default=40, help="replicates the stability loops are timed on")
    ap.add_argument("--only", type=int, choices=(1, 2, 3, 4), action="append", help="run only these workloads")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch threads (default torch's); on an oversubscribed machine 1 avoids threads "
                         "spinning against each other, which made element-wise torch work 60 × slower here")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    T, n, R = args.teams, args.cases, args.replicates
    rng = np.random.default_rng(0)
    x = np.clip(rng.random((T, 1)) * 0.2 + rng.normal(0.7, 0.15, (T, n)), 0, 1).round(3)
    print(f"{T} teams × {n} cases × {R} replicates; torch {torch.__version__} on "
          f"{'cuda' if torch.cuda.is_available() else 'cpu'}, {torch.get_num_threads()} threads; {load()}", flush=True)

    run = set(args.only or (1, 2, 3, 4))
    if 1 in run:
        intervals_of_means(x, args)
    if 2 in run:
        classification_intervals(rng, args)
    if 3 in run:
        stability(x, args)
    if 4 in run:
        auc_board(rng, args)
    print(load())


def intervals_of_means(x, args):
    T, R = x.shape[0], args.replicates
    fast = timed(lambda: S.bootstrap_ci(x, n_resamples=R, seed=0), args.repeat)
    k = min(args.loop_teams, T)
    slow = timed(lambda: [S.bootstrap_metric_ci(np.mean, x[t], n_resamples=R, seed=0) for t in range(k)], args.repeat)
    lo, hi = S.bootstrap_ci(x[:k], n_resamples=R, seed=0)
    same = max(max(abs(a - b) for a, b in zip(S.bootstrap_metric_ci(np.mean, x[t], n_resamples=R, seed=0),
                                              (lo[t], hi[t]))) for t in range(k))
    report("1. interval of a per-case mean, every team", fast, slow, T / k, f"{k} teams")
    print(f"  largest difference from the loop: {same:.1e}")



def classification_intervals(rng, args):
    n, R = args.cases, args.replicates
    y = rng.integers(0, 2, n)
    s = np.clip(rng.random(n) * 0.8 + 0.25 * y, 0, 1).round(3)
    W = S.resample_weights(n, R, 0, strata=y)
    fast = timed(lambda: S.weighted_binary_metrics(y, s, W), args.repeat)
    r = min(args.loop_replicates * 5, R)
    idx = [np.repeat(np.arange(n), w) for w in W[:r].to(torch.int64).numpy()]

    def classification_loop():
        out = []
        for i in idx:
            yy, ss = y[i], s[i]
            pos = ss >= 0.5
            out.append((roc_auc_score(yy, ss), average_precision_score(yy, ss),
                        (pos & (yy == 1)).sum() / (yy == 1).sum(), (~pos & (yy == 0)).sum() / (yy == 0).sum()))
        return out

    slow = timed(classification_loop, args.repeat)
    report("2. AUC, AP, sensitivity, specificity intervals of one submission", fast, slow, R / r, f"{r} replicates")
    got = S.weighted_binary_metrics(y, s, W[:r])
    vectorized = np.stack([got[k].numpy() for k in ("auc", "average_precision", "sensitivity", "specificity")], 1)
    print(f"  largest difference from the loop: {np.abs(vectorized - np.array(classification_loop())).max():.1e}")



def stability(x, args):
    (T, n), R = x.shape, args.replicates
    for method in ("mean", "rank_then_aggregate"):
        fast = timed(lambda: S.rank_stability(x, higher_is_better=True, method=method, n_resamples=R, seed=0),
                     args.repeat)
        r = min(args.loop_replicates if method == "mean" else max(2, args.loop_replicates // 10), R)
        draws = S.resample_weights(n, r, 0).to(torch.int64).numpy()

        def stability_loop():
            full = S.rank_by(x, method, higher_is_better=True)[0]
            counts = np.zeros((T, T), dtype=np.int64)
            for w in draws:
                xi = x[:, np.repeat(np.arange(n), w)]
                ranks = S.rank_by(xi, method, higher_is_better=True)[0]
                kendalltau(full, ranks)
                counts[np.arange(T), np.asarray(ranks, dtype=int) - 1] += 1

        slow = timed(stability_loop, args.repeat)
        report(f"3. rank stability ({method})", fast, slow, R / r, f"{r} replicates")


def auc_board(rng, args):
    T, n, R = args.teams, args.cases, args.replicates
    y = rng.integers(0, 2, n)
    scores = (rng.normal(size=(T, n)) + y * rng.uniform(0.5, 2, (T, 1))).round(4)
    W = S.resample_weights(n, R, 0, strata=y)
    fast = timed(lambda: S.weighted_aucs(y, scores, W), args.repeat)
    k = min(args.loop_teams * 4, T)
    slow = timed(lambda: [S.weighted_binary_metrics(y, scores[t], W)["auc"] for t in range(k)], args.repeat)
    report("4. an AUC board's bootstrap AUCs, every team", fast, slow, T / k, f"{k} teams, team by team")
    same = all(torch.equal(S.weighted_aucs(y, scores[:k], W)[t], S.weighted_binary_metrics(y, scores[t], W)["auc"])
               for t in range(k))
    print(f"  the same numbers to the last bit: {same}")
    results = {f"team {t}": {"per_case": [{"case_id": f"case-{c:06d}", "label": int(y[c]), "score": float(scores[t, c])}
                                          for c in range(n)]} for t in range(T)}
    import evaluator

    whole = timed(lambda: evaluator.compare("classification", results, metric="auc", higher_is_better=True,
                                            method="mean", n_resamples=R, seed=0), 1)
    print(f"  the whole evaluator.compare of the board: {whole[0]:.1f} s", flush=True)


if __name__ == "__main__":
    main()
