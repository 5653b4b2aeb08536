# %% [markdown]
# # 03 · Meta-training: SOAR's teacher-student loop (paper §2, Algorithm 1)
#
# Per outer step: the teacher writes g·n QA pairs (rejection sampling) → g datasets; r students per dataset
# start from the baseline and run the inner RLOO loop on it; the reward is the gain of their score on M questions
# resampled from hard-train (the score is `meta.reward_decoding`: greedy accuracy in the paper, log-likelihood of
# the true chain in the tiny world); the teacher takes an RLOO step on the g dataset rewards; a promotion fires
# when the 3-step moving average exceeds τ (the median student of the best dataset becomes the baseline, the
# dataset joins the Promotion Questions, PQ). Checkpoints after every step: `--resume` continues a killed run.
# The same loop then trains the Intrinsic-T teacher with the learnability reward (§3, App. B.4; no inner loop, no
# promotion) and, where configured, Grounded-T without promotion; `meta.runs` independent teacher seeds of each.
# R̄ starts at 0 over a full window (Algorithm 1) and, by default, restarts after a promotion (`meta.reset_ma`).

# %% tags=["parameters"]
# papermill parameters (literals only; sizes, models and paths come from the params file)
params_path = "params/tiny.yaml"  # a path, or a shipped name (tiny, ci, paper-math, paper-harp, colab-small)
overrides = []  # params overrides, one string per key as soar-lite run -o takes them (its --help)
resume = False  # continue a killed meta-training run
install_spec = ""  # Colab: a pip spec for soar_lite; empty: the soar_lite wheel or checkout in the working directory
online = False  # allow downloads from the Hugging Face hub (always on in Colab)

# %%
# Set-up: install soar_lite if this kernel lacks it (Colab), load the params strictly, print what runs.
import glob, importlib.util, os, shutil, subprocess, sys  # noqa: E401
if importlib.util.find_spec("soar_lite") is None:
    found = sorted(glob.glob("soar_lite-*.whl")) + [d for d in ("soar_lite", "/content/soar_lite")
                                                    if os.path.isfile(os.path.join(d, "pyproject.toml"))]
    spec = install_spec or (found[0] + ("[gpu]" if shutil.which("nvidia-smi") else "") if found else "")
    if not spec:
        raise ImportError("soar_lite is not installed: upload its wheel (make wheel -> dist/soar_lite-*.whl) or clone "
                          "the repository into the working directory, or set install_spec to a pip spec")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", spec], check=True)
from IPython.display import display  # noqa: E402
from soar_lite import plots  # noqa: E402
from soar_lite.stages.common import findings_markdown, notebook_setup, score_label  # noqa: E402
cfg, run_dir = notebook_setup(params_path, overrides, online)

# %%
import pandas as pd
from soar_lite.stages import meta_train
res = meta_train.run(cfg, resume=resume)
for r in res.runs.values():
    print(f"{r.name}: {len(r.metrics)} outer steps, {len(r.promotions)} promotions, {r.seconds / 60:.1f} min this session")

# %% [markdown]
# ## τ from the null spread of the reward
# Before step 0 each grounded run trains one student on each of `meta.tau_null_datasets` datasets written by the
# *untrained* teacher and scores it like R_kj; τ = mean + z·SD/√m (m = the moving-average window): an untrained
# teacher's moving average exceeds it at most ~2% of the time (z = 2, even if a step's g·r students were perfectly
# correlated). A promotion then means a reward above noise (`meta.tau_null_datasets: 0` keeps the paper's τ).

# %%
for r in res.runs.values():
    if r.tau_null:
        x = pd.Series(r.tau_null)
        print(f"{r.name}: null reward {x.mean():+.4f} ± {x.std():.4f} (n = {len(x)}) -> tau {r.tau:.4f}")
    elif r.teacher == "grounded":
        print(f"{r.name}: fixed tau {r.tau}")

# %% [markdown]
# ## Does the teacher learn? Reward at a fixed inner-step count over outer steps (Spearman trend) and the teacher's KL from its start

# %%
display(res.learning_table().round(4))

# %% [markdown]
# ## Teacher reward with promotion markers (paper Fig. 16/19), one panel per run

# %%
for (kind, i), r in res.runs.items():
    if r.metrics.empty:
        continue
    m = r.metrics
    if kind == "intrinsic":
        fig = plots.teacher_reward(m.assign(promoted=False), float("nan"), title=f"{r.name}: learnability reward",
                                   ylabel="learnability reward (App. B.4)")
    else:
        fig = plots.teacher_reward(m, r.tau, title=f"{r.name}: teacher reward (Fig. 16/19)",
                                   ylabel=f"R: Δ {score_label(cfg)}")
    plots.savefig(fig, run_dir.figure(f"meta_teacher_reward_{kind}_run{i}"))

# %% [markdown]
# ## Baseline student across promotion stages, and example questions per stage (paper Fig. 6)

# %%
for (kind, i), r in res.runs.items():
    if kind != "grounded":
        continue
    stages = r.stage_table()
    display(stages)
    if r.promotions:
        plots.savefig(plots.promotion_stages(stages, f"{score_label(cfg)}, hard-train", title=f"{r.name}: Fig. 6 analogue"),
                      run_dir.figure(f"meta_promotion_stages_run{i}"))
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
# `checkpoints/teacher.pt` (trained teacher adapter), `metrics.jsonl` -- in `meta/`, `meta_intrinsic/`,
# `meta_no_promotion/`, and `*_run<i>/` for further teacher seeds.

# %% [markdown]
# ## Findings (each sentence computed from the tables above)

# %%
findings_markdown(res.findings())
