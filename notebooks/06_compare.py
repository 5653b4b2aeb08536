# %% [markdown]
# # 06 · Compare runs: params, pass@k with intervals, meta-training curves, and the rerun tolerance check
#
# What this report shows, for the run directories named in `runs` (the first is the reference): which params
# differ; each method's hard-test pass@k in every run with the difference to the reference, its 95% interval and
# test (paired t where both runs share the run seed, so student s is index-matched; Welch otherwise); the teacher
# reward and the world's question diagnostics of every meta-training run, overlaid; and for reruns of one params
# file, whether the numbers stayed within the tolerance docs/running.md's Determinism section gives. It ends with the
# findings computed from these tables. Rendered by `soar-lite compare RUN_A RUN_B [...]`.

# %% tags=["parameters"]
# papermill parameters (literals only)
runs = []  # run directories, e.g. ["results/tiny", "results/tiny-full"]; the first is the reference
out_dir = "results/compare"  # where figures go
install_spec = ""  # Colab: a pip spec for soar_lite; empty: the soar_lite wheel or checkout in the working directory

# %% tags=["setup"]
# Set-up: install soar_lite if this kernel lacks it (Colab), then read the runs.
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
from soar_lite import compare, plots  # noqa: E402
from soar_lite.stages.common import findings_markdown  # noqa: E402
data = [compare.load_run(r) for r in runs]
if len(data) < 2:
    raise ValueError("runs: name at least two run directories")
base = data[0]
print(f"reference: {base.name}; compared: {', '.join(d.name for d in data[1:])}")

# %% [markdown]
# ## Params that differ (name, results_dir, description and deviations aside)

# %%
for other in data[1:]:
    diff = compare.params_diff(base, other)
    print(f"a = {base.name}, b = {other.name}")
    display(diff.set_index("key") if len(diff) else "the same params")

# %% [markdown]
# ## Hard-test pass@k, each run against the reference (points; 95% interval; paired t where students are index-matched)

# %%
for other in data[1:]:
    cmp = compare.compare_pass_at_k(base, other)
    if len(cmp):
        shown = cmp.copy()
        for c in ["mean_a", "mean_b", "difference", "ci_low", "ci_high"]:
            shown[c] = (100 * shown[c]).round(1)
        print(f"a = {base.name} (reference), b = {other.name}")
        display(shown.round({"p_value": 4}).set_index(["method", "k"]))
        fig = plots.compare_pass_at_k(base.pass_at_k, other.pass_at_k, base.name, other.name, k=int(cmp.k.max()))
        tag = f"{other.name}_vs_{base.name}".replace("/", "-")
        plots.savefig(fig, f"{out_dir}/figures/pass_at_k_{tag}.png")
    else:
        print(f"{other.name} vs {base.name}: no method was evaluated in both runs")

# %% [markdown]
# ## Meta-training, overlaid: the teacher reward and the useful share of each outer step's questions

# %%
for key in ("reward_mean", "useful_share"):
    frame = compare.pd.concat([compare.diagnostics_frame(d, key) for d in data], ignore_index=True)
    if len(frame) and frame[key].notna().any():
        plots.savefig(plots.compare_curves(frame, key), f"{out_dir}/figures/{key}.png")

# %% [markdown]
# ## Rerun check (only for runs of the same params)

# %%
for other in data[1:]:
    display(compare.pd.Series(compare.rerun_check(base, other), name=f"{other.name} vs {base.name}").to_frame())

# %% [markdown]
# ## Findings (each sentence computed from the tables above)

# %%
findings_markdown(compare.summary_lines(data))
