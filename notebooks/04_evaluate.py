# %% [markdown]
# # 04 · Evaluation: does SOAR unlock learning where direct RL has no signal? (paper §4, Tables 4–6, Figs 3, 5, 9)
#
# Every method trains a *fresh* student the same way (RLOO on its question set plus hard-train, or inference only
# for base-model and SOAR-PS) and is scored on hard-test with pass@k from 32 samples (unbiased estimator),
# averaged over the window after the paper's slope-based stop step. Mean ± SD over seeds.
#
# **What the tiny world can and cannot say.** It is a real instance of the paper's problem (a model that fails
# 0/128 on a hard set, can write problems of every difficulty, and whose hard set is unlocked by some curriculum),
# so it can say whether the *mechanism* works: whether a teacher rewarded by a student's progress on hard problems
# writes better stepping stones than the untrained model (Grounded-T vs Base-T), whether that beats direct RL
# (vs Hard-Only), and where it lands against a curated curriculum. It cannot say anything about the paper's
# numbers for Llama-3.2-3B on MATH/HARP, about natural-language diversity or about transfer to OlympiadBench;
# those need `params/paper-*.yaml` on a GPU. The paper's numbers are shown beside ours for orientation, not
# comparison: scales and units differ (tiny pass@k is on a synthetic hard set).

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
from soar_lite.stages import evaluate
res = evaluate.run(cfg)
res.skipped

# %% [markdown]
# ## Table 4/5 analogue: hard-test pass@k (%), mean ± SD over seeds

# %%
ours = plots.mean_sd_table(res.table)
display(ours.loc[[m for m in cfg.evaluate.methods if m in ours.index]])
print("Paper, MATH (Table 4; curated = MATH train (128)):")
display(evaluate.paper_table("MATH (Table 4)"))

# %% [markdown]
# ## Fig. 3 analogue: Δ pass@k over Hard-Only (band ±1 SD over seeds)

# %%
fig = plots.delta_over(res.table[res.table.method != "base-model"])
plots.savefig(fig, run_dir.figure("eval_delta_over_hard_only"))

# %% [markdown]
# ## Fig. 5 analogue: pass@32 over training, Grounded-T vs Base-T vs Hard-Only, and Grounded-T vs Intrinsic-T

# %%
trained = set(res.curves.method) if len(res.curves) else set()
for name, methods, title in (("eval_fig5_left", ("grounded-t", "base-t", "hard-only"), "Fig. 5 (left) analogue: pass@32"),
                             ("eval_fig5_right", ("grounded-t", "intrinsic-t"), "Fig. 5 (right) analogue: grounded vs intrinsic teacher")):
    if trained & set(methods):
        fig, ax = plots.curves(res.curves, 32, [m for m in methods if m in trained], title=title)
        plots.savefig(fig, run_dir.figure(name))

# %% [markdown]
# ## Fig. 9 analogue: pass@k curves with SOAR-PS as a horizontal line

# %%
for k in (1, 32):
    if trained:
        fig = plots.curves_with_reference(res.curves, res.table, k, [m for m in ("hard-only", "soar-pq", "curated") if m in trained],
                                          reference="soar-ps", title=f"Fig. 9 analogue: pass@{k}")
        plots.savefig(fig, run_dir.figure(f"eval_fig9_pass{k}"))

# %% [markdown]
# ## Where the methods land (pass@32), stop steps and time per method

# %%
p32 = res.table[res.table.k == 32].groupby("method").pass_at_k.agg(["mean", "std", "count"]).round(4)
display(p32.loc[[m for m in cfg.evaluate.methods if m in p32.index]])
if len(res.stops):
    display(res.stops.groupby("method").stop_step.describe()[["mean", "min", "max"]])
res.timings
