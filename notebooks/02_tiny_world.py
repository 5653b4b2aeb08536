# %% [markdown]
# # 02 · The tiny world: is it a genuine edge-of-learnability problem?
#
# A permutation f of 0..255; facts f(x) known with three confidences (common, shaky, confused), and holes where f
# has no value (a question through one is ill posed); questions `f^d(x)` answered with a worked chain, which the
# verifier checks whole. Hard problems are long chains through many uncertain facts whose on-path success
# probability at T = 1 is below 1e-6 *by design* (the world's docstring). This report measures what every later
# report relies on:
# 0. **the premise gate**: direct RL trained longer stays flat on hard-test, oracle stones lift it, the untrained
#    model's on-path success rate is bounded, and the probe does not select on luck (a failed check is printed as
#    failed; it stops nothing);
# 1. the model knows easy chains, and its fact accuracy per kind;
# 2. **the stepping-stone property**: RLOO on oracle stepping stones (short chains through one uncertain fact,
#    true answers) lifts hard-test pass@32 above RLOO on hard-train alone, at equal RL steps;
# 3. what the untrained model writes as a teacher (difficulty, answer correctness);
# 4. **latent teaching signal**: datasets written by the untrained model, with its own answers, each used for one
#    inner loop of meta-training size; the change of the reward's score on Q_R they cause (some must be > 0, or no
#    teacher can learn). Their spread is the *null spread of the reward*: what an untrained teacher earns by
#    chance, and the τ it implies (meta-training calibrates its own τ the same way: report 03).
#
# Rebuild the shipped model with `make tiny-model` (`python -m soar_lite.tasks.tiny.pretrain`).

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
from soar_lite.stages.common import findings_markdown, notebook_setup, summary_frame, score_label  # noqa: E402
cfg, run_dir = notebook_setup(params_path, overrides, online, stage="tiny_world", injected=_injected)

# %% tags=["stage"]
from soar_lite.stages import tiny_world
res = tiny_world.run(cfg)

# %%
display(summary_frame({"the shipped model": res.pretrain_info}))
display(summary_frame(res.summary))

# %% [markdown]
# ## 0. The premise gate (paper Finding 1 needs hard problems where direct RL has no signal: v3 Fig. 10)

# %%
display(res.gate)
if len(res.samples_split):
    display(res.samples_split[["samples", "on_path", "lucky", "predicted_on_path", "designed_on_path"]].sum()
            .to_frame("hard-test, all problems").T)
findings_markdown(res.gate_findings())

# %% [markdown]
# ## 1. Fact accuracy per kind, easy chains

# %%
display(res.piece_table())
print("easy chains (common facts only, depth <= 3), greedy accuracy:", round(res.summary["easy_greedy_accuracy"], 3))

# %% [markdown]
# ## 2. Stepping stones vs Hard-Only (hard-test pass@k at the last step, %, mean ± SD over students; Hard-Only trained longer, where run, is drawn beside them)

# %%
display(plots.mean_sd_table(res.final.rename(columns={"arm": "method"})))
fig, ax = plots.curves(res.distinct_curves().rename(columns={"arm": "method"}), k=int(res.final.k.max()),
                       title="hard-test pass@k during RLOO (band ±1 SD over n students, clipped to [0, 1])")
plots.savefig(fig, run_dir.figure("world_stones_vs_hard_only"))
display(res.arm_table())

# %% [markdown]
# ## 3. The untrained model as a teacher

# %%
print(f"{len(res.labels)} pairs, {res.summary['teacher_rejected']} format rejections; "
      f"well-posed share {res.labels.well_posed.mean():.3f}")
display(res.teacher_difficulty())
fig = plots.histogram(res.labels[res.labels.well_posed]["uncertain"], bins=range(0, 10),
                      xlabel="uncertain facts on the true path", title="difficulty of teacher-written questions")
plots.savefig(fig, run_dir.figure("world_teacher_difficulty"))

# %% [markdown]
# ## 4. Latent teaching signal and the null spread of the reward: Δ of the reward's score on Q_R after one inner loop per base-teacher dataset

# %%
d = res.deltas
display(d.delta.describe().round(4))
print(f"datasets with delta > 0: {(d.delta > 0).sum()} / {len(d)};  delta < 0: {(d.delta < 0).sum()}")
print(f"tau implied for batches of g = {cfg.meta.g} datasets over {cfg.meta.outer_steps} outer steps (family-wise "
      f"false-promotion rate {cfg.meta.tau_fwer}; soar.null_threshold): {res.summary['null_tau']:.4f}")
fig = plots.histogram(d["delta"], bins=15, xlabel=f"Δ {score_label(cfg)} on Q_R",
                      title="base-teacher dataset rewards")
plots.savefig(fig, run_dir.figure("world_latent_signal"))

# %% [markdown]
# ## Findings (each sentence computed from the tables above)

# %%
findings_markdown(res.findings())
