# %% [markdown]
# # 04 · Evaluation: does SOAR unlock learning where direct RL has no signal? (paper §4, Tables 4–6, Figs 3, 5, 9)
#
# Every method trains a *fresh* student the same way (RLOO on its question set plus hard-train, or inference only
# for base-model and SOAR-PS) and is scored on hard-test with pass@k (unbiased estimator, `evaluate.samples` samples
# per problem), averaged over the window after the paper's slope-based stop step. Mean ± SD over students.
# Student s of every method shares its training and test-sampling seeds and its teacher question draw with student
# s of the others (common random numbers), so methods are compared student by student.

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
from soar_lite.stages.common import findings_markdown, notebook_setup, world_notes  # noqa: E402
cfg, run_dir = notebook_setup(params_path, overrides, online, stage="evaluate", injected=_injected)
world_notes(cfg, "evaluate")  # what this world can and cannot say (Task.report_notes; none for most worlds)

# %% tags=["stage"]
import pandas as pd
from soar_lite import arms
from soar_lite.stages import evaluate
res = evaluate.run(cfg)

# %%
for method, why in res.skipped.items():
    print(f"{method}: skipped ({why})")

# %% [markdown]
# ## Table 4/5 analogue: hard-test pass@k (%), mean ± SD (n students), beside the paper's Table 4
# n differs by method: the two central comparisons get `evaluate.seeds` students, the others `other_seeds`; the
# untrained model (base-model) is the noise floor over `base_model_seeds` independent sampling seeds.

# %%
display(res.summary_table())
for name in ("MATH (Table 4)", "HARP (Table 5)"):
    print(f"Paper, {name}, pass@k % (curated = the paper's MATH train (128) row):")
    display(evaluate.paper_table(name))

# %% [markdown]
# ## The comparisons: difference (points of pass@k), 95% interval, test, and the design's power for the paper's MATH ratio
# Paired t where both methods' students share index-matched seeds (common random numbers), else Welch. Power: the
# probability that the same test rejects at α = 0.05 if the true gap were the paper's MATH ratio (`paper_ratio`,
# Table 4) applied to our reference arm, simulated with this run's own SDs -- only where Table 4 reports both rows
# (`note` says why otherwise). Two arms identical by construction are marked untestable, not tested.
# Machine-readable: tables/comparisons.csv.

# %%
shown = res.comparisons[res.comparisons.k.isin([1, 32])].copy()
for c in ("difference", "ci_low", "ci_high"):
    shown[c] = (100 * shown[c]).round(1)
display(shown.round({"p_value": 4, "power": 2, "paper_ratio": 2}).set_index(["comparison", "k"]))

# %% [markdown]
# ## Fig. 3 analogue: Δ pass@k over Hard-Only (band ±1 SD over students)

# %%
fig = plots.delta_over(res.table[res.table.method != "base-model"])
plots.savefig(fig, run_dir.figure("eval_delta_over_hard_only"))

# %% [markdown]
# ## Fig. 5 analogue: pass@k over training (k: the largest of `evaluate.ks`; the paper's 32). Left: Grounded-T vs Base-T vs Hard-Only; right: per teacher seed, as in the paper
# Right: each teacher method's students split by the teacher seed they sampled from (student s uses teacher seed
# s mod meta.runs); each teacher's status in meta-training (stable, guarded, collapsed) is in its label.

# %%
trained = set(res.curves.method) if len(res.curves) else set()
kmax = max(cfg.evaluate.ks)
left = [m for m in arms.FIG5_LEFT if m in trained]
if left:
    fig, ax = plots.curves(res.curves, kmax, left, title=f"Fig. 5 (left) analogue: pass@{kmax}")
    plots.savefig(fig, run_dir.figure("eval_fig5_left"))
right = [m for m in arms.TEACHER_METHODS if m in trained]  # the arms that sample a meta-trained teacher
if right:
    per_seed = res.curves[res.curves.method.isin(right)].copy()
    per_seed["teacher"] = [f"{m} seed {t} ({res.teacher_status.get(m, {}).get(t, '?')})"
                           for m, t in zip(per_seed.method, per_seed.teacher_seed)]
    fig, ax = plots.curves(per_seed, kmax, sorted(per_seed.teacher.unique()), by="teacher",
                           title=f"Fig. 5 (right) analogue: pass@{kmax} per teacher seed")
    plots.savefig(fig, run_dir.figure("eval_fig5_right"))

# %% [markdown]
# ## Fig. 9 analogue: pass@k curves with SOAR-PS as a horizontal line

# %%
for k in (1, kmax):
    if trained:
        fig = plots.curves_with_reference(res.curves, res.table, k, [m for m in arms.FIG9_TRAINED if m in trained],
                                          reference="soar-ps", title=f"Fig. 9 analogue: pass@{k}")
        plots.savefig(fig, run_dir.figure(f"eval_fig9_pass{k}"))

# %% [markdown]
# ## Figs. 7/8 analogue: one method in curriculum vs mixed mode; v3 Fig. 10 analogue: Hard-Only trained longer
# Drawn only for the arms this run evaluates (`base-t@curriculum` and `base-t@mixed`, ...; `hard-only-extended`):
# the two modes of a method train on the same questions with the same seeds; Hard-Only extended trains
# `evaluate.extended_steps_factor` times as many steps. Band: ±1 SD over students.

# %%
for m in arms.FIG7_ARMS:
    pair = [f"{m}@curriculum", f"{m}@mixed"]
    if set(pair) <= trained:
        fig, ax = plots.curves(res.curves, kmax, pair, title=f"Figs. 7/8 analogue: {m}, curriculum vs mixed, pass@{kmax}")
        plots.savefig(fig, run_dir.figure(f"eval_fig7_{m}_modes"))
if {"hard-only", "hard-only-extended"} <= trained:
    fig, ax = plots.curves(res.curves, kmax, ["hard-only-extended", "hard-only"],
                           title=f"v3 Fig. 10 analogue: Hard-Only trained {cfg.evaluate.extended_steps_factor}x longer")
    plots.savefig(fig, run_dir.figure("eval_fig10_hard_only_extended"))

# %% [markdown]
# ## SeRL (v3 Tables 4/5): the self-play baseline, at steps 50 and 100 as the paper reports it
# Drawn when this run evaluates `serl` (soar_lite/serl.py: the untrained model's own questions, filtered by the
# agreement of its answers, rewarded by majority vote). The table reads its curves at the paper's two steps; the
# figure puts it beside Hard-Only and SOAR-PQ. Band: ±1 SD over students.

# %%
if "serl" in trained:
    display(res.pass_at_steps("serl", [50, 100, cfg.evaluate.serl_step]))
    fig, ax = plots.curves(res.curves, kmax, [m for m in ("serl", "hard-only", "soar-pq") if m in trained],
                           title=f"v3 Tables 4/5 analogue: SeRL beside Hard-Only and SOAR-PQ, pass@{kmax}")
    plots.savefig(fig, run_dir.figure("eval_serl"))

# %% [markdown]
# ## Fig. 14/16 analogue: pass@k against the number of questions |X|, from the teacher and from real problems
# Drawn when this run evaluates `grounded-t#n` / `curated#n` arms (params/paper-fig14-question-count.yaml):
# `grounded-t#n` trains on n questions sampled from the trained teacher, `curated#n` on n real easier problems.

# %%
sized = [m for m in res.table.method.unique() if "#" in m]
if sized:
    fig = plots.by_question_count(res.table, kmax)
    plots.savefig(fig, run_dir.figure("eval_fig14_question_count"))

# %% [markdown]
# ## Training length: stop steps and evaluation points in the window after the stop
# pass@k of a trained student is the mean over the `after_stop_window` steps after its stop step (App. B.8); a stop
# late in the run leaves few evaluation points in that window. Seconds per method: wall time of its students
# (a student resumed across sittings: its sittings summed).

# %%
if len(res.stops):
    display(res.stops.groupby("method")[["stop_step", "window_points"]].agg(["mean", "min", "max"]).round(1))
    print(res.stops_sentence())
display(pd.Series(res.timings, name="seconds").round(0).to_frame())

# %% [markdown]
# ## Findings (each sentence computed from the tables above)

# %%
findings_markdown(res.findings())
