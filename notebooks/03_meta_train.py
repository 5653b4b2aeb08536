# %% [markdown]
# # 03 · Meta-training: SOAR's teacher-student loop (paper §2, Algorithm 1)
#
# Per outer step: the teacher writes g·n QA pairs (rejection sampling) → g datasets; r students per dataset
# start from the baseline and run the inner RLOO loop on it; the reward is the gain of their score on M questions
# resampled from hard-train (the score is `meta.reward_decoding`: greedy accuracy in the paper, log-likelihood of
# the true chain in the tiny world); the teacher takes an RLOO step on the g dataset rewards; a promotion fires
# when the 3-step moving average exceeds τ (the median student of the best dataset becomes the baseline, the
# dataset joins the Promotion Questions, PQ). Checkpoints after every step: `--resume` continues a killed run.
# The same loop then trains the Intrinsic-T teacher with the learnability reward (§3, App. B.4): no inner loop,
# no promotion.

# %% tags=["parameters"]
# papermill parameters (literals only; sizes, models and paths come from the params file)
params_path = "params/tiny.yaml"  # a path, or a shipped name (tiny, ci, paper-math, paper-harp, colab-small)
overrides = []  # "key=value" strings, e.g. "meta.outer_steps=2"
resume = False  # continue a killed meta-training run
install_spec = ""  # Colab: pip spec, e.g. "soar-lite[gpu] @ git+https://github.com/<you>/soar_lite"
online = False  # allow downloads from the Hugging Face hub (always on in Colab)

# %%
# Set-up: install soar_lite if this kernel lacks it (Colab), load the params strictly, print what runs.
import importlib.util, subprocess, sys  # noqa: E401
if importlib.util.find_spec("soar_lite") is None:
    if not install_spec:
        raise ImportError("soar_lite is not installed: set the parameter install_spec to a pip spec or pip install the repository")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", install_spec], check=True)
from IPython.display import display  # noqa: E402
from soar_lite import plots  # noqa: E402
from soar_lite.stages.common import notebook_setup  # noqa: E402
cfg, run_dir = notebook_setup(params_path, overrides, online)

# %%
from soar_lite.stages import meta_train
res = meta_train.run(cfg, resume=resume)
g = res.grounded
m = g.metrics
print(f"{len(m)} outer steps, {int(m.promoted.sum())} promotions, {g.seconds / 60:.1f} min this session, "
      f"{m.seconds.mean():.1f} s per outer step")
display(m[["step", "reward_mean", "reward_ma", "promoted", "baseline_score", "inner_steps", "rejected", "seconds"]].round(4))

# %% [markdown]
# ## Teacher reward with promotion markers (paper Fig. 16/19)

# %%
fig = plots.teacher_reward(m, cfg.meta.tau, ylabel=f"Δ {cfg.meta.reward_decoding} score on Q_R")
plots.savefig(fig, run_dir.figure("meta_teacher_reward"))

# %% [markdown]
# ## Baseline student across promotion stages, and example questions per stage (paper Fig. 6)

# %%
stages = g.stage_table()
display(stages)
plots.savefig(plots.promotion_stages(stages), run_dir.figure("meta_promotion_stages"))
for stage, examples in g.pq_examples().items():
    print(f"stage {stage}:", examples)
if not g.pq:
    print("no promotion: PQ is empty")

# %% [markdown]
# ## Diagnostics: format rejections, inner-loop student reward, time per step

# %%
plots.savefig(plots.step_diagnostics(m), run_dir.figure("meta_diagnostics"))

# %% [markdown]
# ## Intrinsic-T: the same loop with the learnability reward (paper §3, App. B.4)
# R_k = mean over the dataset's questions of (0 if the baseline student never solves it in 32 samples,
# else 1 − its success rate). Its teacher is sampled in reports 04/05.

# %%
if res.intrinsic is not None:
    mi = res.intrinsic.metrics
    print(f"{len(mi)} outer steps in {res.intrinsic.seconds / 60:.1f} min")
    fig = plots.teacher_reward(mi.assign(promoted=False), float("nan"), title="Intrinsic-T learnability reward",
                               ylabel="learnability reward")
    plots.savefig(fig, run_dir.figure("meta_intrinsic_reward"))

# %% [markdown]
# Saved for reports 04/05: `meta/pq.json` (PQ), `meta/checkpoints/promoted_*.pt` (promoted students),
# `meta/checkpoints/teacher.pt` (trained teacher adapter), `meta/metrics.jsonl`, and the same for `meta_intrinsic/`.
