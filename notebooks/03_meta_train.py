# %% [markdown]
# # 03 · Meta-training: SOAR's teacher-student loop (paper §2, Algorithm 1)
#
# Per outer step: the teacher writes g·n QA pairs (rejection sampling) → g datasets; r students per dataset
# start from the baseline and run the inner RLOO loop on it; the reward is the gain of their score on M questions
# resampled from hard-train (the score is `meta.reward_decoding`: greedy accuracy in the paper, or the log-likelihood
# of the reference answer where greedy accuracy stays 0); the teacher takes an RLOO step on the g dataset rewards; a promotion fires
# when the 3-step moving average exceeds τ (the median student of the best dataset becomes the baseline, the
# dataset joins the Promotion Questions, PQ). Checkpoints after every step: `--resume` continues a killed run.
# The same loop then trains the Intrinsic-T teacher with the learnability reward (§3, App. B.4; no inner loop, no
# promotion) and, where configured, Grounded-T without promotion and SOAR at the paper's grouping (the credit-
# granularity control arm); `meta.runs` independent teacher seeds of each. R̄ starts at 0 over a full window
# (Algorithm 1) and, by default, restarts after a promotion (`meta.reset_ma`).
#
# What this report shows: whether the teacher learns (the reward's trend, the world's own question diagnostics per
# outer step and at the end against the untrained teacher, never the hard-test set), τ from the null distribution
# of the batch reward, the teacher-gradient SNR that predicts it, the collapse guard's interventions, the
# promotions and the Promotion Questions. It ends with findings computed from its tables.

# %% tags=["parameters"]
# papermill parameters (literals only; sizes, models and paths come from the params file)
params_path = "params/tiny.yaml"  # a path, or a shipped name (tiny, ci, paper-math, paper-harp, colab-small)
overrides = []  # params overrides, one string per key as soar-lite run -o takes them (its --help)
resume = False  # continue a killed meta-training run
install_spec = ""  # Colab: a pip spec for soar_lite; empty: the soar_lite wheel or checkout in the working directory
online = False  # allow downloads from the Hugging Face hub (always on in Colab)
_parameters = set(globals())  # papermill adds its parameters after this cell: -f params.yaml injects the file's sections

# %% tags=["setup"]
# Set-up: install soar_lite if this kernel lacks it (Colab), load the params strictly, print what runs.
_injected = {k: v for k, v in globals().items()  # what papermill injected (none when the cell runs on its own)
             if k not in globals().get("_parameters", globals()) and not k.startswith("_")}
import glob, importlib.util, os, shutil, subprocess, sys  # noqa: E401
_have = importlib.util.find_spec("soar_lite")
if _have is None or _have.origin is None:  # a clone named soar_lite in the working directory is a namespace package
    _clones = [os.path.dirname(p) for p in sorted(glob.glob("*/pyproject.toml") + glob.glob("/content/*/pyproject.toml"))
               if 'name = "soar-lite"' in open(p).read()]  # a clone of this repository, under any name
    found = ["./" + w for w in sorted(glob.glob("soar_lite-*.whl"))] + [c if c[0] == "/" else "./" + c for c in _clones]
    spec = install_spec or (found[0] + ("[gpu]" if shutil.which("nvidia-smi") else "") if found else "")
    if not spec:
        raise ImportError("soar_lite is not installed: upload its wheel (make wheel -> dist/soar_lite-*.whl) or clone "
                          "the repository into the working directory, or set install_spec to a pip spec")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", spec], check=True)
    importlib.invalidate_caches()
from IPython.display import display  # noqa: E402
from soar_lite import plots  # noqa: E402
from soar_lite.stages.common import findings_markdown, notebook_setup, score_label  # noqa: E402
cfg, run_dir = notebook_setup(params_path, overrides, online, stage="meta_train", injected=_injected)

# %% tags=["stage"]
from soar_lite.stages import meta_train
res = meta_train.run(cfg, resume=resume)

# %%
for r in res.runs.values():
    print(f"{r.name}: {len(r.metrics)} outer steps, {len(r.promotions)} promotions, {r.status()}, "
          f"{r.seconds / 60:.1f} min this session")

# %% [markdown]
# ## Credit granularity: how each run groups its teacher samples
# One scalar reward per dataset is all the teacher learns from: g datasets of n questions (r students each) give g
# rewards per outer step for g·n rollouts. The same samples in more, smaller datasets give finer credit (docs/measurement.md,
# "Credit granularity"); `grounded-paper-grouping` runs the paper's g × n × r beside the run's own.

# %%
table = res.learning_table()
display(table[["run", "grouping", "status", "promotions", "tau"]] if len(table) else "no outer step ran")

# %% [markdown]
# ## τ from the null distribution of the batch reward
# Before step 0 each promoting run takes `meta.tau_null_steps` outer steps of the *untrained* teacher (g datasets ×
# r students each, no update). τ is the (1 − `meta.tau_fwer`) quantile of the largest moving average over simulated
# null runs of `meta.outer_steps` steps, each step's R̂ the mean of g resampled datasets plus the step effect, each run
# drawn from the predictive distribution (the calibration's own estimation error is paid for): an untrained teacher
# promotes at least once in a run with probability ≤ `meta.tau_fwer` (family-wise; `soar.null_threshold`, tested by
# simulation). `meta.tau_null_steps: 0` keeps the paper's fixed τ.

# %%
for (kind, i), r in res.runs.items():
    if not r.tau_null_summary:
        if kind in meta_train.PROMOTING:
            print(f"{r.name}: fixed tau {r.tau}")
        continue
    s = r.tau_null_summary
    print(f"{r.name}: {s['null_steps']} null steps x {s['g']} datasets; null R̂ {s['rhat_mean']:+.5f} ± {s['rhat_sd']:.5f} "
          f"(step effect SD {s['step_sd']:.5f}) -> tau {s['tau']:.5f}, {s['z_per_step']:.2f} SDs of one moving average, "
          f"family-wise rate {s['fwer']} over {s['steps']} steps")
    r_hat, peaks = r.null_simulation(cfg)
    fig = plots.null_distribution([v for step in r.tau_null for v in step], r_hat, peaks, s["tau"], s["fwer"],
                                  cfg.meta.ma_window, title=f"{r.name}: the null distribution behind tau")
    plots.savefig(fig, run_dir.figure(f"meta_tau_null_{kind}_run{i}"))

# %% [markdown]
# ## Predict before you spend: the teacher-gradient SNR per outer step (`soar-lite snr`)
# K draws of the untrained teacher's gradient, each a full outer step with the real reward; SNR = |E g|² / E|g − E g|²
# (unbiased, from the draws' Gram matrix; 95% jackknife interval); ~1/SNR outer steps before the summed signal exceeds
# the noise. At the run's grouping and at the paper's.

# %%
if len(res.snr):
    display(res.snr.round(5))
else:
    print("not estimated (meta.snr_draws = 0)")

# %% [markdown]
# ## Does the teacher learn? The reward at a fixed inner-step count, the useful share of its questions, KL from its start
# `useful_rho`/`useful_p`: Spearman trend of the world's useful share over outer steps; `useful_end_*`: the trained
# and the untrained teacher on the same fresh samples at the end (`meta.diagnostics_samples`), with the 95% interval
# of the difference. None of these enter the reward; none looks at hard-test.

# %%
display(table.round(4) if len(table) else "no outer step ran")

# %%
diag = {r.name: r.diagnostics() for r in res.runs.values() if not r.metrics.empty}
first = next((r for r in res.runs.values() if r.end_diagnostics), None)
keys = [k for k in res.diagnostic_keys() if any(k in d for d in diag.values())]  # what the world logs
for key in keys:
    # the untrained teacher's value counted over as many questions as one outer step's sample (a unique share
    # depends on the count): the end-of-run samples in chunks of g x n, averaged
    untrained = first.end_diagnostics["untrained"] if first else {}
    base = untrained.get("at_step_size", {}).get(key, untrained.get(key))
    fig = plots.question_diagnostics(diag, key, untrained=base, title=f"{key} of each outer step's "
                                     f"{cfg.meta.g * cfg.meta.n} teacher questions (g x n)")
    plots.savefig(fig, run_dir.figure(f"meta_{key}"))
if not keys:
    print("the world reports no question diagnostics (Task.question_diagnostics)")

# %% [markdown]
# ### At the end: trained vs untrained teacher on the same fresh samples (common random numbers)

# %%
end = res.end_table()
if len(end):
    display(end.pivot_table(index="run", columns="diagnostic", values="trained").round(3))
    display(end.drop_duplicates("diagnostic").set_index("diagnostic")[["untrained", "samples"]].round(3))

# %% [markdown]
# ### Across teachers: the claims about teachers at their unit (tables/teacher_level.csv)
# Each teacher seed is one unit: its end share against the untrained teacher's (paired t over a kind's teachers),
# and the grounded teachers' gain against each other kind's (Welch t; the frozen control's gain is 0 by
# construction). Two seeds of a kind are at most "suggestive".

# %%
levels = res.teacher_level()
display(levels.drop(columns=["n_a", "n_b", "unit", "scale"]).round(4) if len(levels) else
        "no teacher-level comparison: the world reports no question diagnostics")

# %% [markdown]
# ## The collapse guard (a trust region; `meta.guard`)
# After each teacher update: the per-token KL of the new teacher from the previous one on the step's rollouts, and
# the format-rejection rate of fresh samples. An update past `meta.guard.max_kl` or a rejection-rate rise past
# `max_reject_increase` is undone (adapter and AdamW state) and retried at half the learning rate; after
# `max_retries` halvings the step keeps the previous teacher. Two absolute bounds stand beside these, against a drift
# of updates each within them: the teacher's KL from its initial model (`max_kl_initial`) and the rejection rate
# itself (`max_reject`); the middle and right panels draw them.

# %%
guarded = res.guard_table()
display(guarded if len(guarded) else "no update was undone in any run")
fig = plots.guard_over_steps(diag, cfg.meta.guard, title="collapse guard, every run")
plots.savefig(fig, run_dir.figure("meta_guard"))

# %% [markdown]
# ## Teacher reward with promotion markers (paper Fig. 16/19), one panel per run
# τ is drawn only for runs that promote (Grounded-T without promotion and Intrinsic-T never use it).

# %%
for (kind, i), r in res.runs.items():
    if r.metrics.empty:
        continue
    m = r.metrics
    if kind == "intrinsic":
        fig = plots.teacher_reward(m.assign(promoted=False), None, title=f"{r.name}: learnability reward",
                                   ylabel="learnability reward (App. B.4)")
    else:
        fig = plots.teacher_reward(m, r.tau if kind in meta_train.PROMOTING else None,
                                   title=f"{r.name}: teacher reward (Fig. 16/19)", ylabel=f"R: Δ {score_label(cfg)}")
    plots.savefig(fig, run_dir.figure(f"meta_teacher_reward_{kind}_run{i}"))

# %% [markdown]
# ## Baseline student across promotion stages, and example questions per stage (paper Fig. 6)

# %%
for (kind, i), r in res.runs.items():
    if kind not in meta_train.PROMOTING:
        continue
    stages = r.stage_table()
    display(stages)
    if r.promotions:
        plots.savefig(plots.promotion_stages(stages, f"{score_label(cfg)}, hard-train", title=f"{r.name}: Fig. 6 analogue"),
                      run_dir.figure(f"meta_promotion_stages_{kind}_run{i}"))
        for stage, examples in r.pq_examples().items():
            print(f"stage {stage}:", examples)
    else:
        print(f"{r.name}: no promotion, PQ is empty (no figure)")

# %% [markdown]
# ## Diagnostics of the first grounded run: format rejections, inner-loop student reward, time per step

# %%
if res.grounded is not None and not res.grounded.metrics.empty:
    plots.savefig(plots.step_diagnostics(res.grounded.metrics), run_dir.figure("meta_diagnostics"))

# %% [markdown]
# Saved for reports 04/05, per run: `pq.json` (PQ), `checkpoints/promoted_*.pt` (promoted students),
# `checkpoints/teacher.pt` (trained teacher adapter), `metrics.jsonl`, `diagnostics.json` -- in `meta/`,
# `meta_intrinsic/`, `meta_no_promotion/`, `meta_paper_grouping/`, and `*_run<i>/` for further teacher seeds.

# %% [markdown]
# ## Findings (each sentence computed from the tables above)

# %%
findings_markdown(res.findings())
