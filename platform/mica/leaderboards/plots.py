"""Every plot of the leaderboards and the challenge report, drawn one way: matplotlib → SVG, by a
worker, stored with its data as a table and a one-line summary (what a screen reader reads,
what a test checks). Pages show the stored SVG as an image; the report's PDF embeds the same.

Each function takes plain data and returns a `plot(...)` dict, JSON-safe:
``{"title", "svg", "columns", "rows", "summary"}``. Crowded plots keep the best `TOP` teams; the
table always lists what was drawn and the summary says how many were left out.
"""

import io
import math
import re

import matplotlib
import numpy as np
from matplotlib.figure import Figure

# The site's colours (mica.css): ink, muted, line, accent, bad, good; then more for many teams.
INK, MUTED, LINE, ACCENT, BAD, GOOD = "#1d2733", "#5b6b7c", "#d9e0e7", "#0b6e99", "#b3261e", "#1e7b34"
PALETTE = [ACCENT, BAD, GOOD, "#c77c02", "#6a3d9a", "#1b9e9e", "#d45087", MUTED, "#8c564b", "#2f4b7c"]
TOP = 20
# The order pages and the report show plots in: the raw data, then the statistics.
ORDER = ["history", "roc", "froc", "cases", "podium", "heatmap", "blob", "significance", "robustness"]
STYLE = {
    "svg.fonttype": "none",  # text stays text: searchable, and smaller
    "svg.hashsalt": "mica",  # the same data gives the same file
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.edgecolor": MUTED,
    "axes.labelcolor": INK,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.color": LINE,
    "grid.linewidth": 0.6,
    "xtick.color": MUTED,
    "ytick.color": MUTED,
    "text.color": INK,
    "legend.frameon": False,
}


def in_order(drawn):
    """[(name, plot)] of a stored {name: plot} (a JSON object keeps no order) in ORDER."""
    return sorted((drawn or {}).items(), key=lambda item: ORDER.index(item[0]) if item[0] in ORDER else len(ORDER))


def label(name, width=28):
    """A team name as matplotlib text: no mathtext (a "$" is literal), long names cut."""
    text = str(name)
    if len(text) > width:
        text = text[: width - 1] + "…"
    return re.sub(r"([$\\])", r"\\\1", text)


def colour(i):
    return PALETTE[i % len(PALETTE)]


def figure(width=6.4, height=3.6):
    return Figure(figsize=(width, height), layout="constrained")


def plot(fig, *, title, columns, rows, summary):
    with matplotlib.rc_context(STYLE):
        buffer = io.StringIO()
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return {"title": title, "svg": buffer.getvalue(), "columns": columns, "rows": rows, "summary": summary}


def left_out(shown, total):
    return f" (the best {shown} of {total} teams drawn)" if total > shown else ""


def _number(value, digits=4):
    return None if value is None or not math.isfinite(value) else round(float(value), digits)


# -- leaderboard plots ------------------------------------------------------------------------
def roc_curves(curves, *, top=5):
    """curves: [(team, fpr, tpr, auc)] best first."""
    shown = curves[:top]
    with matplotlib.rc_context(STYLE):
        fig = figure(5.2, 4.2)
        ax = fig.subplots()
        ax.plot([0, 1], [0, 1], color=LINE, linestyle="--", linewidth=1)
        for i, (team, fpr, tpr, auc) in enumerate(shown):
            ax.plot(fpr, tpr, color=colour(i), linewidth=1.6, label=f"{label(team)} ({auc:.3f})")
        ax.set(xlabel="1 − specificity (false positive rate)", ylabel="Sensitivity", xlim=(0, 1), ylim=(0, 1.01))
        ax.legend(loc="lower right", title="Team (AUC)", fontsize=8)
    rows = [[team, _number(auc), _number(_sensitivity_at(fpr, tpr, 0.1)), _number(_sensitivity_at(fpr, tpr, 0.2))]
            for team, fpr, tpr, auc in shown]
    summary = (f"ROC curves of the top {len(shown)} teams; AUC from {shown[-1][3]:.3f} ({shown[-1][0]}) "
               f"to {shown[0][3]:.3f} ({shown[0][0]}){left_out(len(shown), len(curves))}." if shown else "No ROC curve.")
    return plot(fig, title="ROC curves", columns=["team", "auc", "sensitivity at 10% FPR", "sensitivity at 20% FPR"],
                rows=rows, summary=summary)


def froc_curves(curves, *, fp_rates, top=5):
    """curves: [(team, fp_per_image, sensitivity, froc, sensitivities at fp_rates)] best first;
    x on a log scale (a curve's (0, 0) start is left off it), the read-out rates marked."""
    shown = curves[:top]
    with matplotlib.rc_context(STYLE):
        fig = figure(5.6, 4.2)
        ax = fig.subplots()
        for rate in fp_rates:
            ax.axvline(rate, color=LINE, linestyle="--", linewidth=1)
        for i, (team, fpi, sens, froc, at) in enumerate(shown):
            fpi, sens = np.asarray(fpi, dtype=float), np.asarray(sens, dtype=float)
            drawn = fpi > 0
            ax.plot(fpi[drawn], sens[drawn], color=colour(i), linewidth=1.6, label=f"{label(team)} ({froc:.3f})")
            ax.scatter(fp_rates, at, color=colour(i), s=12, zorder=3)  # what the score averages
        ax.set_xscale("log")
        ax.set_xticks(fp_rates, [f"{rate:g}" for rate in fp_rates])
        ax.set(xlabel="False positives per image (read-out rates dashed)", ylabel="Sensitivity", ylim=(0, 1.01),
               xlim=(min(fp_rates) / 2, max(fp_rates) * 2))
        if shown:
            ax.legend(loc="upper left", title="Team (FROC score)", fontsize=8)  # the curves rise to the right
    rows = [[team, _number(froc), *[_number(value) for value in at]] for team, _, _, froc, at in shown]
    summary = (f"FROC curves of the top {len(shown)} teams; FROC score (mean sensitivity at {len(fp_rates)} rates) "
               f"from {shown[-1][3]:.3f} ({shown[-1][0]}) to {shown[0][3]:.3f} ({shown[0][0]})"
               f"{left_out(len(shown), len(curves))}." if shown else "No FROC curve.")
    return plot(fig, title="FROC curves", columns=["team", "froc", *[f"sensitivity at {rate:g} FP/image" for rate in fp_rates]],
                rows=rows, summary=summary)


def _sensitivity_at(fpr, tpr, at):
    return float(np.interp(at, fpr, tpr))


def case_distributions(values, *, metric, higher_is_better, top=10):
    """values: {team: [per-case values]} best team first: a box over the dots of each team."""
    teams = list(values)[:top]
    with matplotlib.rc_context(STYLE):
        fig = figure(6.4, 0.9 + 0.32 * max(len(teams), 2))
        ax = fig.subplots()
        rng = np.random.default_rng(0)
        for i, team in enumerate(teams):
            data = np.asarray([v for v in values[team] if v is not None], dtype=float)
            y = len(teams) - 1 - i
            if len(data):
                ax.scatter(data, y + rng.uniform(-0.18, 0.18, len(data)), s=6, color=colour(i), alpha=0.45,
                           linewidths=0)
                ax.boxplot(data, positions=[y], orientation="horizontal", widths=0.5, showfliers=False,
                           medianprops={"color": INK}, boxprops={"color": INK}, whiskerprops={"color": INK},
                           capprops={"color": INK})
        ax.set_yticks(range(len(teams)), [label(t) for t in reversed(teams)])
        ax.set_xlabel(f"{metric} per case ({'higher' if higher_is_better else 'lower'} is better)")
        ax.grid(axis="y", visible=False)
    rows = []
    for team in teams:
        data = np.asarray([v for v in values[team] if v is not None], dtype=float)
        q1, median, q3 = np.percentile(data, [25, 50, 75]) if len(data) else (None, None, None)
        rows.append([team, len(data), _number(median), _number(q1), _number(q3),
                     _number(data.mean()) if len(data) else None])
    summary = (f"Per-case {metric} of the top {len(teams)} teams (dots: cases; boxes: quartiles){left_out(len(teams), len(values))}; "
               + (f"medians from {min(r[2] for r in rows if r[2] is not None):.3f} to "
                  f"{max(r[2] for r in rows if r[2] is not None):.3f}." if any(r[2] is not None for r in rows) else "no values."))
    return plot(fig, title=f"Per-case {metric}", columns=["team", "cases", "median", "q1", "q3", "mean"], rows=rows,
                summary=summary)


def history(points, *, metric, higher_is_better, start, top=10):
    """points: [(team, submitted_at, score)] of every scored submission: each team's best so far,
    against days since `start` (the phase's opening)."""
    best = {}
    for team, when, score in sorted(points, key=lambda p: p[1]):
        series = best.setdefault(team, [])
        if not series or (score > series[-1][1] if higher_is_better else score < series[-1][1]):
            series.append((when, score))
    final = sorted(best, key=lambda t: best[t][-1][1], reverse=higher_is_better)
    teams = final[:top]
    with matplotlib.rc_context(STYLE):
        fig = figure(6.4, 3.4)
        ax = fig.subplots()
        def days(when):
            return (when - start).total_seconds() / 86400

        end = max((p[1] for p in points), default=None)
        for i, team in enumerate(teams):
            series = best[team] + [(end, best[team][-1][1])]
            ax.step([days(w) for w, _ in series], [s for _, s in series], where="post", color=colour(i),
                    linewidth=1.5, label=label(team))
            ax.scatter([days(w) for w, _ in best[team]], [s for _, s in best[team]], s=10, color=colour(i))
        ax.set_ylabel(f"best {metric} so far")
        ax.set_xlabel("days since the phase opened")
        ax.ticklabel_format(axis="x", useOffset=False, style="plain")
        if teams:
            ax.legend(fontsize=7, loc="best")
    rows = [[team, when.isoformat(timespec="minutes"), _number(score)] for team in teams for when, score in best[team]]
    improvements = sum(len(best[t]) for t in teams)
    summary = (f"Best {metric} of the top {len(teams)} teams over time: {improvements} improvements; "
               f"{teams[0]} leads with {best[teams[0]][-1][1]:.3f}{left_out(len(teams), len(final))}."
               if teams else "No scored submission yet.")
    return plot(fig, title="Leaderboard history", columns=["team", "improved at (UTC)", f"best {metric}"], rows=rows,
                summary=summary)


# -- statistics plots -------------------------------------------------------------------------
def blob(names, rank_counts, *, top=TOP):
    """Each team's rank over the bootstrap samples: a disc per (team, rank) whose area is the
    share of samples, the median rank marked, and the 2.5–97.5% range of ranks as a line."""
    teams = names[:top]
    with matplotlib.rc_context(STYLE):
        fig = figure(6.4, 3.8)
        ax = fig.subplots()
        rows = []
        for i, team in enumerate(teams):
            counts = np.asarray(rank_counts[team], dtype=float)
            total = counts.sum() or 1
            ranks = np.arange(1, len(counts) + 1)
            share = counts / total
            kept = share > 0
            ax.scatter(np.full(kept.sum(), i + 1), ranks[kept], s=share[kept] * 300, color=colour(i), alpha=0.7,
                       linewidths=0)
            cumulative = np.cumsum(share)
            low, median, high = (int(ranks[np.searchsorted(cumulative, q)]) for q in (0.025, 0.5, 0.975))
            ax.plot([i + 1, i + 1], [low, high], color=INK, linewidth=0.8)
            ax.scatter([i + 1], [median], marker="x", color=INK, s=18)
            rows.append([team, median, low, high, round(float(share.max()), 3)])
        ax.plot([0.5, len(teams) + 0.5], [0.5, len(teams) + 0.5], color=LINE, linewidth=0.8)
        ax.set_xticks(range(1, len(teams) + 1), [label(t, 18) for t in teams], rotation=45, ha="right")
        ax.set_ylabel("rank in bootstrap samples")
        ax.invert_yaxis()
    stable = sum(1 for row in rows if row[2] == row[3])
    summary = (f"Rank stability of the top {len(teams)} teams: {stable} keep one rank in 95% of the bootstrap samples; "
               f"{rows[0][0]} ranks {rows[0][2]}–{rows[0][3]}{left_out(len(teams), len(names))}." if rows else "No ranks.")
    return plot(fig, title="Rank stability (blob plot)",
                columns=["team", "median rank", "rank 2.5%", "rank 97.5%", "share at its most frequent rank"],
                rows=rows, summary=summary)


def significance_map(names, significant, *, top=TOP):
    """significant[a][b]: team a is significantly better than team b (after adjustment)."""
    teams = names[:top]
    matrix = np.array([[1.0 if significant.get(a, {}).get(b) else 0.0 for b in teams] for a in teams])
    with matplotlib.rc_context(STYLE):
        fig = figure(5.6, 5.0)
        ax = fig.subplots()
        ax.imshow(matrix, cmap=matplotlib.colors.ListedColormap(["#eef2f5", ACCENT]), vmin=0, vmax=1)
        ax.set_xticks(range(len(teams)), [label(t, 18) for t in teams], rotation=45, ha="right")
        ax.set_yticks(range(len(teams)), [label(t, 18) for t in teams])
        ax.set_xlabel("… is significantly better than this team")
        ax.set_ylabel("This team …")
        ax.grid(False)
    rows = [[a, sum(1 for b in teams if significant.get(a, {}).get(b)), len(teams) - 1] for a in teams]
    summary = (f"Significance map of the top {len(teams)} teams: {rows[0][0]} is significantly better than "
               f"{rows[0][1]} of the {rows[0][2]} others{left_out(len(teams), len(names))}." if rows else "No teams.")
    return plot(fig, title="Significance map", columns=["team", "significantly better than", "teams compared"],
                rows=rows, summary=summary)


def podium(values, *, metric, higher_is_better, top=10):
    """challengeR's podium: per-case values of the teams placed by their rank on that case (dots
    joined per case); below, how often each team took each place over the cases."""
    teams = list(values)[:top]
    data = np.array([values[t] for t in teams], dtype=float)  # teams × cases
    k, n_cases = data.shape
    order = np.argsort(-data if higher_is_better else data, axis=0, kind="stable")
    places = np.empty_like(order)
    places[order, np.arange(n_cases)] = np.arange(k)[:, None]
    with matplotlib.rc_context(STYLE):
        fig = figure(6.4, 5.0)
        top_ax, bottom_ax = fig.subplots(2, 1, height_ratios=[3, 1.4], sharex=True)
        width = 0.8 / k
        for case in range(min(n_cases, 400)):
            xs = [places[i, case] + 1 + (i - k / 2) * width for i in range(k)]
            top_ax.plot(sorted(xs), [data[i, case] for i in np.argsort(xs)], color=LINE, linewidth=0.4)
        for i, team in enumerate(teams):
            xs = places[i] + 1 + (i - k / 2) * width
            top_ax.scatter(xs, data[i], s=5, color=colour(i), label=label(team), linewidths=0)
            counts = np.bincount(places[i], minlength=k)
            bottom_ax.bar(np.arange(1, k + 1) + (i - k / 2) * width, counts, width=width, color=colour(i))
        top_ax.set_ylabel(metric)
        top_ax.legend(fontsize=7, ncols=min(k, 5), loc="upper center", bbox_to_anchor=(0.5, 1.18))
        bottom_ax.set_ylabel("cases")
        bottom_ax.set_xlabel("place on the case")
        bottom_ax.set_xticks(range(1, k + 1))
    rows = [[team, *np.bincount(places[i], minlength=k).tolist()] for i, team in enumerate(teams)]
    firsts = rows[int(np.argmax([r[1] for r in rows]))] if rows else None
    summary = (f"Podium of the top {k} teams over {n_cases} cases: {firsts[0]} is first on {firsts[1]} cases"
               f"{left_out(k, len(values))}." if firsts else "No cases.")
    return plot(fig, title="Podium", columns=["team", *[f"place {p}" for p in range(1, k + 1)]], rows=rows,
                summary=summary)


def ranking_heatmap(values, *, higher_is_better, top=TOP):
    """How many cases put each team at each place (rank per case), teams in board order."""
    teams = list(values)[:top]
    data = np.array([values[t] for t in teams], dtype=float)
    k = len(teams)
    order = np.argsort(-data if higher_is_better else data, axis=0, kind="stable")
    places = np.empty_like(order)
    places[order, np.arange(data.shape[1])] = np.arange(k)[:, None]
    counts = np.array([np.bincount(places[i], minlength=k) for i in range(k)])
    with matplotlib.rc_context(STYLE):
        fig = figure(5.6, 1.2 + 0.28 * k)
        ax = fig.subplots()
        cmap = matplotlib.colors.LinearSegmentedColormap.from_list("mica", ["#ffffff", ACCENT])
        image = ax.imshow(counts, cmap=cmap, aspect="auto")
        ax.set_xticks(range(k), [str(p) for p in range(1, k + 1)])
        ax.set_yticks(range(k), [label(t, 18) for t in teams])
        ax.set_xlabel("place on a case")
        ax.grid(False)
        fig.colorbar(image, ax=ax, label="cases")
    rows = [[team, *counts[i].tolist()] for i, team in enumerate(teams)]
    diagonal = int(np.trace(counts))
    summary = (f"Ranking heatmap of the top {k} teams: {diagonal} of {counts.sum()} case places agree with the "
               f"leaderboard's order{left_out(k, len(values))}.")
    return plot(fig, title="Ranking heatmap", columns=["team", *[f"place {p}" for p in range(1, k + 1)]], rows=rows,
                summary=summary)


def robustness(names, ranks_by_method, *, top=TOP):
    """Each team's rank under each ranking method: lines that cross are rankings that disagree."""
    teams = names[:top]
    methods = list(ranks_by_method)
    with matplotlib.rc_context(STYLE):
        fig = figure(6.4, 4.0)
        ax = fig.subplots()
        for i, team in enumerate(teams):
            ax.plot(range(len(methods)), [ranks_by_method[m][team] for m in methods], marker="o", markersize=3,
                    color=colour(i), linewidth=1.2, label=label(team, 18))
        ax.set_xticks(range(len(methods)), [m.replace("_", " ") for m in methods])
        ax.set_ylabel("rank")
        ax.invert_yaxis()
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    rows = [[team, *[ranks_by_method[m][team] for m in methods]] for team in teams]
    changed = sum(1 for row in rows if len(set(row[1:])) > 1)
    summary = (f"Ranks of the top {len(teams)} teams under {len(methods)} ranking methods: {changed} change rank with "
               f"the method{left_out(len(teams), len(names))}.")
    return plot(fig, title="Ranking robustness across methods", columns=["team", *methods], rows=rows,
                summary=summary)
