"""Figure functions used by the notebooks (each returns a matplotlib Figure; `savefig` writes PNG).

Bands are ±1 SD over students (seeds), clipped to the quantity's range (pass@k in [0, 1]) and labelled with n;
every axis names the quantity it plots."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg") if not matplotlib.get_backend().lower().startswith(("module://matplotlib_inline", "nbagg")) else None
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from .arms import FIG14_FAMILIES, colors  # noqa: E402

EXTRA_COLORS = {"stones": "#9467bd"}  # the tiny world's oracle stepping stones (report 02)
DASHES = ["-", "--", "-.", ":"]  # line styles that keep identical lines (twin runs) apart


def color_of(name: str, default: str | None = None) -> str | None:
    """An arm's colour (arms.py, read at call time), or `default`."""
    return {**colors(), **EXTRA_COLORS}.get(name, default)


# free colours for lines without one of their own (teacher seeds, arm variants, runs): tab20's 20 then 8 more; none
# is black or grey-black (the reference lines' colour)
PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7",
           "#dbdb8d", "#9edae5", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#e6550d", "#31a354"]


def assign_colors(names) -> dict:
    """One colour per name for one figure: an arm's own colour (arms.py) where it has one and no earlier name took it,
    else the first PALETTE colour no line of the figure has, so no two lines of a figure share a colour (the palette
    repeats only past its 28 colours)."""
    own, out = {**colors(), **EXTRA_COLORS}, {}
    for name in names:
        c = own.get(str(name))
        if c is not None and c not in out.values():
            out[name] = c
    for name in names:
        if name not in out:
            taken = set(out.values()) | {own[str(n)] for n in names if str(n) in own}
            free = [c for c in PALETTE if c not in taken] or PALETTE
            out[name] = free[0]
    return out


def savefig(fig, path: Path) -> None:
    """Write the figure as PNG (returns nothing, so a report cell does not print the path)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def _finish(ax, xlabel: str, ylabel: str, title: str, legend: bool = True):
    from matplotlib.ticker import MaxNLocator

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if xlabel in ("outer step", "student RL step"):  # steps are whole numbers
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if legend and ax.get_legend_handles_labels()[0]:  # no labelled line (an arm not in this run): no empty legend
        _legend_outside(ax)
    ax.grid(alpha=0.3)


def _legend_outside(ax) -> None:
    """The legend to the right of the axes, outside the data."""
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)


def no_data(ax, why: str) -> None:
    """An axis with nothing to draw says so in words (a figure of an arm subset the run did not evaluate), on
    linear axes: a log axis without positive data cannot be drawn."""
    ax.set_xscale("linear")
    ax.set_yscale("linear")
    ax.text(0.5, 0.5, why, ha="center", va="center", transform=ax.transAxes, wrap=True, fontsize=10, color="#555555")
    ax.set_xticks([])
    ax.set_yticks([])


def pass_at_k_by_level(levels: pd.DataFrame, title: str = "Base model pass@k per difficulty level"):
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for k, g in levels.groupby("k"):
        ax.plot(g["level"].astype(str), g["pass_at_k"], marker="o", label=f"pass@{k}")
    _finish(ax, "level (uncertain facts on the true path)", "pass@k of the base model", title)
    return fig


def teacher_reward(metrics: pd.DataFrame, tau: float | None, title: str = "Teacher reward (paper Fig. 16/19)",
                   ylabel: str = "reward: Δ score on Q_R vs the baseline"):
    """R̂_t, R̄_t and promotion markers; the τ line only for a run that promotes (tau not None)."""
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.plot(metrics["step"], metrics["reward_mean"], color="#aaaaaa", marker=".", label="batch reward R̂_t")
    ax.plot(metrics["step"], metrics["reward_ma"], color="#d62728", label="moving average R̄_t")
    if tau is not None:
        ax.axhline(tau, ls="--", color="k", lw=0.8, label=f"τ = {tau:.4f}")
    for s in metrics.loc[metrics["promoted"], "step"]:
        ax.axvline(s, color="#2ca02c", alpha=0.6, lw=1.5)
    if metrics["promoted"].any():
        ax.plot([], [], color="#2ca02c", label="promotion")
    _finish(ax, "outer step", ylabel, title)
    return fig


def promotion_stages(stage_acc: pd.DataFrame, score_label: str,
                     title: str = "Hard-train accuracy per promotion stage (Fig. 6 analogue)"):
    """The paper's Fig. 6 per promotion stage: greedy accuracy on hard-train, and the run's reward metric
    (`score_label`) as its gain over stage 0 (the base student), so that an improvement points up whatever the
    metric's sign (a log-likelihood is negative). A greedy accuracy that is 0 at every stage gets no empty panel:
    the figure says so instead."""
    stages = stage_acc["stage"].astype(str)
    acc = stage_acc["hard_train_greedy_acc"].astype(float)
    flat = bool((acc.fillna(0) == 0).all())
    fig, axes = plt.subplots(1, 1 if flat else 2, figsize=(5 if flat else 10, 3.4), squeeze=False)
    axes = list(axes[0])
    score = stage_acc["hard_train_score"].astype(float)
    gain = score - score.iloc[0]
    ax = axes[-1]
    ax.bar(stages, gain, color=["#1f77b4" if v >= 0 else "#d62728" for v in gain])
    ax.axhline(0, color="k", lw=0.8)
    _finish(ax, "promotion stage (0 = the base student)", f"gain in {score_label} over stage 0",
            "the reward metric" + (" (greedy accuracy is 0 at every stage: not drawn)" if flat else ""), legend=False)
    if not flat:
        axes[0].bar(stages, acc, color="#d62728")
        _finish(axes[0], "promotion stage (0 = the base student)", "greedy accuracy, hard-train", "greedy accuracy",
                legend=False)
    fig.suptitle(title, fontsize=10, y=1.02)
    fig.tight_layout()
    return fig


def question_diagnostics(runs: dict[str, pd.DataFrame], key: str, untrained: float | None = None,
                         title: str = "", ylabel: str = ""):
    """One line per meta-training run: a question diagnostic of each outer step's teacher sample (the world's own,
    `Task.question_diagnostics`); the dashed line is the untrained teacher's value on the end-of-run samples."""
    fig, ax = plt.subplots(figsize=(8, 3.6))
    palette = assign_colors(list(runs))
    for i, (name, d) in enumerate(runs.items()):
        if key in d:  # twin runs (identical until a promotion) stay visible: each its own dash pattern
            ax.plot(d["step"], d[key], marker=".", label=name, color=palette[name], ls=DASHES[i % len(DASHES)])
    if untrained is not None:
        ax.axhline(untrained, ls="--", color="k", lw=0.8, label=f"untrained teacher ({untrained:.3f}, per step's count)")
    _finish(ax, "outer step", ylabel or key, title or f"{key} of each outer step's teacher sample")
    return fig


def null_distribution(null_datasets, r_hat, peaks, tau: float, fwer: float, window: int, title: str = ""):
    """The calibration of τ: the null datasets' rewards R_k, the simulated null batch reward R̂ (g datasets), and the
    largest moving average R̄ over each simulated null run, whose (1 - fwer) quantile is τ."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.2))
    for ax, values, xlabel in ((axes[0], null_datasets, "dataset reward R_k (untrained teacher)"),
                               (axes[1], r_hat, "simulated batch reward R̂ (one step)"),
                               (axes[2], peaks, f"largest {window}-step moving average over a run")):
        sns.histplot(x=pd.Series(values, dtype=float), bins=40, color="#1f77b4", ax=ax, stat="density")
        ax.axvline(tau, ls="--", color="k", lw=0.9, label=f"τ = {tau:.4f}")
        _finish(ax, xlabel, "density", "", legend=ax is axes[2])
    axes[2].set_title(f"{100 * fwer:.0f}% of null runs exceed τ", fontsize=9)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def guard_over_steps(runs: dict[str, pd.DataFrame], guard, title: str = ""):
    """The collapse guard per outer step (`guard`: meta.guard): per-token KL of each update from the previous teacher
    (log scale), the teacher's KL from its initial model and the format-rejection rate of each step's sample, each
    against its bound (dashed; absent where the bound is off); crosses mark updates the guard undid."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.4))
    palette = assign_colors(list(runs))
    for name, d in runs.items():
        if "kl_prev" not in d:
            continue
        line, = axes[0].plot(d["step"], d["kl_prev"].clip(lower=1e-7), marker=".", label=name, color=palette[name])
        undone = d[d["guard_retries"] > 0]
        axes[0].scatter(undone["step"], undone["kl_prev"].clip(lower=1e-7), marker="x", s=60, color=line.get_color())
        if "kl_initial" in d:
            axes[1].plot(d["step"], d["kl_initial"], marker=".", color=line.get_color(), label=name)
        axes[2].plot(d["step"], d["reject_rate"], marker=".", color=line.get_color(), label=name)
    axes[0].axhline(guard.max_kl, ls="--", color="k", lw=0.8, label=f"bound {guard.max_kl:g}")
    axes[0].set_yscale("log")
    if guard.max_kl_initial > 0:
        axes[1].axhline(guard.max_kl_initial, ls="--", color="k", lw=0.8, label=f"bound {guard.max_kl_initial:g}")
    if guard.max_reject < 1:
        axes[2].axhline(guard.max_reject, ls="--", color="k", lw=0.8, label=f"bound {guard.max_reject:g}")
    _finish(axes[0], "outer step", "KL(previous || new) per token", "teacher update size (x: undone by the guard)")
    _finish(axes[1], "outer step", "KL(teacher || initial) per token", "the teacher's drift from its initial model",
            legend=False)
    _finish(axes[2], "outer step", "format-rejection rate of the step's sample",
            f"format rejections (the guard bounds a rise of {guard.max_reject_increase:g} per update)", legend=False)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def step_diagnostics(metrics: pd.DataFrame):
    fig, axes = plt.subplots(1, 3, figsize=(12, 3))
    rate = metrics["rejected"] / (metrics["rejected"] + metrics["accepted"])
    axes[0].plot(metrics["step"], rate, marker=".")
    axes[0].set_title("format-rejection rate")
    axes[1].plot(metrics["step"], metrics["student_train_reward"], marker=".", color="#ff7f0e")
    axes[1].set_title("inner-loop student training reward")
    axes[2].plot(metrics["step"], metrics["seconds"], marker=".", color="#555555")
    axes[2].set_title("seconds per outer step")
    for a in axes:
        a.set_xlabel("outer step")
        a.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def curves(curve: pd.DataFrame, k: int, methods=None, title: str = "", by: str = "method"):
    """Mean over students of hard-test pass@k over training steps, one line per method, band ±1 SD over its n
    students clipped to [0, 1]."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    data = curve[curve.k == k]
    methods = [m for m in (methods or sorted(data[by].unique())) if m in set(data[by])]
    if not methods:
        no_data(ax, f"no trained arm with pass@{k} curves in this run")
    palette = assign_colors(methods)  # arms without a colour of their own (base-t@curriculum, seeds) get a free one
    for i, m in enumerate(methods):
        g = data[data[by] == m].groupby("step").pass_at_k
        mean, sd, n = g.mean(), g.std().fillna(0), int(g.size().max())
        color = palette[m]
        ax.plot(mean.index, mean.values, marker=".", color=color, label=f"{m} (n={n})")
        ax.fill_between(mean.index, (mean - sd).clip(lower=0), (mean + sd).clip(upper=1), alpha=0.15, color=color)
    _finish(ax, "student RL step", f"hard-test pass@{k}",
            title or f"pass@{k} over training (mean; band ±1 SD over n students, clipped to [0, 1])")
    return fig, ax


def curves_with_reference(curve: pd.DataFrame, table: pd.DataFrame, k: int, methods, reference: str, title: str = ""):
    """`curves` plus an inference-only method (SOAR-PS) as a horizontal line at its mean pass@k (Fig. 9)."""
    fig, ax = curves(curve, k, methods, title)
    ref = table[(table.method == reference) & (table.k == k)].pass_at_k
    if len(ref):
        taken = {line.get_color() for line in ax.get_lines()}
        color = color_of(reference) if color_of(reference) not in taken else next(c for c in PALETTE if c not in taken)
        ax.axhline(ref.mean(), color=color, ls="--", label=f"{reference} (mean)")
        _legend_outside(ax)
    return fig


def by_question_count(table: pd.DataFrame, k: int, families=FIG14_FAMILIES,
                      title: str = "Fig. 14/16 analogue: pass@k vs the number of questions |X|"):
    """Mean pass@k (points) against the question count of the `family#n` arms (grounded-t#32, curated#32, ...), one
    line per family, band ±1 SD over students."""
    from .config import parse_method

    fig, ax = plt.subplots(figsize=(6, 3.8))
    rows = [(parse_method(m), m) for m in table.method.unique()]
    if not any(spec.base in families and spec.n_questions for spec, _ in rows):
        no_data(ax, f"no {' or '.join(f'{f}#n' for f in families)} arm in this run")
        ax.set_title(title)
        return fig
    palette = assign_colors(list(families))
    for i, fam in enumerate(families):
        arms = sorted((spec.n_questions, m) for spec, m in rows if spec.base == fam and spec.n_questions)
        if not arms:
            continue
        per_arm = [table[(table.method == m) & (table.k == k)].pass_at_k for _, m in arms]
        mean = np.array([100 * x.mean() for x in per_arm])
        sd = np.array([100 * (x.std() if len(x) > 1 else 0.0) for x in per_arm])
        xs = [n for n, _ in arms]
        color = palette[fam]
        ax.plot(xs, mean, marker="o", color=color, label=f"{fam} (n={min(len(x) for x in per_arm)}-{max(len(x) for x in per_arm)} per |X|)")
        ax.fill_between(xs, mean - sd, mean + sd, alpha=0.15, color=color)
    ax.set_xscale("log", base=2)
    _finish(ax, "|X| (questions trained on beside hard-train)", f"hard-test pass@{k} (points; band ±1 SD over students)",
            title)
    return fig


def delta_over(table: pd.DataFrame, reference: str = "hard-only", methods=None, title: str = "Δ pass@k over Hard-Only (Fig. 3)",
               separate=("curated",)):
    """Per method: mean and SD over seeds of pass@k minus the reference method's mean, vs k, in points (as the tables);
    methods in `separate` (the curated upper bound, tens of points above the rest) get their own panel so that they
    do not squeeze the others flat."""
    methods = methods or [m for m in table.method.unique() if m != reference]
    if reference not in set(table.method) or not methods:
        fig, ax = plt.subplots(figsize=(6, 3.8))
        no_data(ax, f"no {reference} arm in this run: no Δ to draw" if reference not in set(table.method)
                else f"no arm besides {reference} in this run: no Δ to draw")
        ax.set_title(title)
        return fig
    apart = [m for m in methods if m in separate]
    panels = [g for g in [[m for m in methods if m not in separate]] + [apart] if g]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 3.8), squeeze=False)
    ref = table[table.method == reference].groupby("k").pass_at_k.mean()
    palette = assign_colors(methods)
    for ax, group in zip(axes[0], panels):
        for m in group:
            g = table[table.method == m].groupby("k").pass_at_k
            mean, sd = 100 * (g.mean() - ref), 100 * g.std().fillna(0)
            n = int(g.size().max())
            ax.plot(mean.index, mean.values, marker="o", label=f"{m} (n={n})", color=palette[m])
            ax.fill_between(mean.index, mean - sd, mean + sd, alpha=0.15, color=palette[m])
        ax.axhline(0, color="k", lw=0.8)
        ax.set_xscale("log", base=2)
        _finish(ax, "k", f"Δ pass@k vs {reference} (points; band ±1 SD over students)", title if ax is axes[0][0] else "")
    fig.tight_layout()
    return fig


def diversity_over_training(div: pd.DataFrame, title: str = "Teacher diversity over meta-training (Fig. 17b/20b)"):
    """One line per teacher kind (mean over its runs, band ±1 SD over runs), each with its own dash pattern, so that
    two identical lines (a grounded run and its no-promotion twin before the first promotion) stay visible."""
    fig, ax = plt.subplots(figsize=(7, 3.5))
    sns.lineplot(data=div, x="step", y="mean_pairwise_cosine_distance", hue="teacher", style="teacher", dashes=True,
                 markers=True, ax=ax, errorbar="sd")
    _finish(ax, "outer step", "mean pairwise cosine distance", title + " (band ±1 SD over runs)")
    return fig


def compare_pass_at_k(a: pd.DataFrame, b: pd.DataFrame, name_a: str, name_b: str, k: int):
    """Two runs' pass@k of every method both evaluated, side by side (points; bars: mean, whiskers: ±1 SD over
    students)."""
    import numpy as np

    methods = [m for m in dict.fromkeys(a.method) if m in set(b.method)]
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(methods)), 3.8))
    x = np.arange(len(methods))
    for i, (df, name) in enumerate(((a, name_a), (b, name_b))):
        g = df[df.k == k].groupby("method").pass_at_k
        mean, sd = 100 * g.mean().reindex(methods), 100 * g.std().reindex(methods).fillna(0)
        ax.bar(x + (i - 0.5) * 0.4, mean, 0.4, yerr=sd, capsize=3, label=name, alpha=0.8)
    ax.set_xticks(x, methods, rotation=30, ha="right")
    _finish(ax, "method", f"hard-test pass@{k} (%; ±1 SD over students)", f"pass@{k}: {name_b} vs {name_a}")
    return fig


def compare_curves(frame: pd.DataFrame, key: str):
    """A meta-training quantity over outer steps, one line per (run, meta folder); a reward is drawn in one panel per
    reward kind (the grounded reward and Intrinsic-T's learnability are in different units), one unit per axis."""
    groups = list(frame.groupby(["run", "folder"]))
    kinds = {"learnability reward (Intrinsic-T)": [g for g in groups if "intrinsic" in g[0][1]],
             "grounded reward": [g for g in groups if "intrinsic" not in g[0][1]]} if key.startswith("reward") \
        else {key: groups}
    kinds = {k: v for k, v in kinds.items() if v} or {key: []}
    fig, axes = plt.subplots(1, len(kinds), figsize=(8 * len(kinds), 3.6), squeeze=False)
    palette = assign_colors([f"{run}/{folder}" for (run, folder), _ in groups])
    for ax, (kind, members) in zip(axes[0], kinds.items()):
        for i, ((run, folder), g) in enumerate(members):
            name = f"{run}/{folder}"
            ax.plot(g["step"], g[key], marker=".", label=name, color=palette[name], ls=DASHES[i % len(DASHES)])
        _finish(ax, "outer step", f"{key} ({kind})" if kind != key else key,
                f"{kind}: every meta-training run of every compared run" if kind != key
                else f"{key} per outer step, every meta-training run of every compared run")
    fig.tight_layout()
    return fig


def histogram(values, bins, xlabel: str, title: str):
    fig, ax = plt.subplots(figsize=(5, 3))
    sns.histplot(x=pd.Series(values, dtype=float), bins=bins, color="#1f77b4", ax=ax)
    _finish(ax, xlabel, "count", title, legend=False)
    return fig


def mean_sd_table(table: pd.DataFrame, index="method", value="pass_at_k", scale: float = 100.0) -> pd.DataFrame:
    """'mean ± SD' strings per (index, k), values scaled to percent like the paper's tables."""
    g = table.groupby([index, "k"])[value]
    mean, sd = g.mean() * scale, g.std().fillna(0) * scale
    return (mean.round(1).astype(str) + " ± " + sd.round(1).astype(str)).unstack("k")


__all__ = ["savefig", "pass_at_k_by_level", "teacher_reward", "promotion_stages", "question_diagnostics",
           "null_distribution", "guard_over_steps", "step_diagnostics", "curves",
           "curves_with_reference", "delta_over", "diversity_over_training", "compare_pass_at_k", "compare_curves",
           "histogram", "mean_sd_table"]
