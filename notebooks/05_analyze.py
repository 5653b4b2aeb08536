# %% [markdown]
# # 05 · Questions: well-posedness vs correctness, error taxonomy, diversity (paper §5, Tables 1 and 7, v3 Fig. 15, Fig. 17/20)
#
# Finding 3 of the paper: the *structure* of the teacher's questions (well posed, coherent) matters more than the
# correctness of its answers; grounded teachers keep their diversity where intrinsic (learnability) teachers collapse.

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
from soar_lite.stages.common import findings_markdown, notebook_setup  # noqa: E402
cfg, run_dir = notebook_setup(params_path, overrides, online, stage="analyze", injected=_injected)

# %% tags=["stage"]
from soar_lite import analysis
from soar_lite.stages import analyze
res = analyze.run(cfg)

# %%
print("judge calls:", res.judge_calls, "| embedder:", res.embedder)

# %% [markdown]
# ## Table 7 analogue: shares over all samples (ours) and the paper's (Claude-4.5-Sonnet judge)

# %%
shown = res.labels[res.labels.n > 0] if "n" in res.labels else res.labels  # an empty set (no PQ) has no shares
display(shown.set_index("set").round(3))
for name in sorted(set(res.labels.set) - set(shown.set)):
    print(f"{name}: empty (no questions), not shown")
display(analysis.PAPER_TABLE7)

# %% [markdown]
# ## Table 1 analogue: Vendi score of `analyze.vendi_subsample`-question subsamples (ours; the paper: 128) and the paper's (Qwen3-8B embeddings)

# %%
print(f"this run: subsamples of {cfg.analyze.vendi_subsample} questions, {cfg.analyze.vendi_bootstrap} bootstrap draws")
display(res.vendi.round(2))
display(analysis.PAPER_TABLE1)

# %% [markdown]
# ## Diversity over teacher training, grounded vs intrinsic (Fig. 17b/20b)

# %%
if len(res.diversity):
    plots.savefig(plots.diversity_over_training(res.diversity), run_dir.figure("analyze_diversity_over_training"))

# %% [markdown]
# ## Diversity at the world's level, per teacher seed (the teacher is the unit)
# Each teacher seed's draw of `analyze.n_questions` questions, beside the untrained model's draw of the same index
# (common random numbers): the pooled Vendi score, the Vendi score within each stratum the world names
# (`Task.question_stratum`) re-weighted to the Base-T draw's mix, the unique share, and the world's own coverage of
# hard-test (`Task.coverage`; the columns `coverage:*`). The comparison pairs Grounded-T and Base-T by seed.

# %%
if len(res.per_teacher):
    display(res.per_teacher.round(3))
    display(res.strata.pivot_table(index=["set", "stratum"], values=["n", "vendi", "unique_share"],
                                   aggfunc="mean").round(3))
    cmp = res.diversity_comparison()
    if len(cmp):
        display(cmp[["measure", "mean_a", "mean_b", "difference", "ci_low", "ci_high", "p_value", "n_a", "test",
                     "verdict"]].round(4))
else:
    print("not measured: no teacher draws")

# %% [markdown]
# ## v3 Fig. 15 analogue: hard-train + correct-only questions vs + all well-posed questions (mixed mode; pass@k %, mean ± SD over students)

# %%
print("question source:", res.ablation_source)
display(plots.mean_sd_table(res.ablation))
display(res.ablation.groupby("method").n_questions.first())

# %% [markdown]
# ## Findings (each sentence computed from the tables above)

# %%
findings_markdown(res.findings())
