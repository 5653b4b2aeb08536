# %% [markdown]
# # 01 · Probe: fail@k hard sets (paper App. B.5, Table 2: fail@128)
#
# Sample `probe.samples` solutions per pool problem (the paper: 128) at T = 1.0 with the student prompt; keep the
# problems solved 0 times; confirm with a second, independent batch of `probe.confirm_samples` (our addition against
# the winner's curse); split 50/50 at random with a seed derived from the run seed, keeping the task's split groups
# together (`Task.split_groups`). Then the base model's pass@k per difficulty level. The sizes this run used are
# printed below.

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
from soar_lite.stages.common import findings_markdown, notebook_setup, summary_frame, world_notes  # noqa: E402
cfg, run_dir = notebook_setup(params_path, overrides, online, stage="probe", injected=_injected)
world_notes(cfg, "probe")  # the world's own note on its split (Task.report_notes; none for most worlds)

# %% tags=["stage"]
from soar_lite.stages import probe
print(f"this run: fail@{cfg.probe.samples}, confirmed by {cfg.probe.confirm_samples} more samples per problem")
res = probe.run(cfg)

# %%
display(summary_frame(res.summary))

# %% [markdown]
# ## Table 2 analogue (ours) and the paper's Table 2
# The paper's counts are for Llama-3.2-3B-Instruct on the real benchmarks.

# %%
display(res.table)
display(probe.PAPER_TABLE2)

# %% [markdown]
# ## Base model pass@k per difficulty level

# %%
if res.levels is not None:
    display(res.levels.pivot(index="level", columns="k", values="pass_at_k").round(4))
    plots.savefig(plots.pass_at_k_by_level(res.levels), run_dir.figure("probe_pass_at_k_by_level"))
else:
    print("probe.level_pool is empty: skipped")

# %%
print("hard-train examples:")
for p in res.hard_set.train[:5]:
    print(" ", p.question, "->", p.answer[:80])

# %% [markdown]
# ## Findings (each sentence computed from the tables above)

# %%
findings_markdown(res.findings())
