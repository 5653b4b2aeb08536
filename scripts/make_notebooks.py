"""Write notebooks/*.ipynb from the cell lists below (the notebooks are generated, edit them here).

    python scripts/make_notebooks.py

Every notebook: a parameters cell (literals only, papermill injects values), a set-up cell that
installs the package on Colab when it is missing, loads the params file strictly and prints the
deviations from the paper; then calls into soar_lite and plots. No logic lives here.
"""
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

OUT = Path(__file__).resolve().parent.parent / "notebooks"

PARAMS = '''# papermill parameters (literals only; sizes, models and paths come from the params file)
params_path = "params/tiny.yaml"  # a path, or a shipped name (tiny, paper-math, paper-harp, colab-small)
# overrides: a list of "key=value" strings, e.g. meta.outer_steps=2
overrides = []
resume = False          # continue a killed meta-training run
install_spec = ""       # Colab: pip spec, e.g. "soar-lite[gpu] @ git+https://github.com/<you>/soar_lite"
online = False          # allow downloads from the Hugging Face hub (always on in Colab)'''

SETUP = '''# Set-up: install soar_lite if this kernel lacks it (Colab), detect the GPU, load the params strictly.
import importlib.util, os, subprocess, sys
ON_COLAB = "google.colab" in sys.modules
if online or ON_COLAB:
    os.environ["SOAR_LITE_ONLINE"] = "1"   # models and data may come from the hub
else:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
if importlib.util.find_spec("soar_lite") is None:
    if not install_spec:
        raise ImportError("soar_lite is not installed: set the parameter install_spec to a pip spec "
                          "(e.g. 'soar-lite[gpu] @ git+https://github.com/<you>/soar_lite') or pip install the repository")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", install_spec], check=True)
import torch
import pandas as pd
from IPython.display import display
from soar_lite import pipeline, plots
from soar_lite.config import load_config
from soar_lite.models import backend_line
cfg = load_config(params_path, overrides)   # a shipped name works without this repository (Colab)
print(pipeline.banner(cfg))
print(f"torch {torch.__version__}; " + backend_line(cfg.model.backend))
FIG = cfg.run_dir / "figures"'''


def notebook(title_md: str, cells: list[tuple[str, str]]) -> nbformat.NotebookNode:
    nb = new_notebook()
    nb.cells.append(new_markdown_cell(title_md))
    p = new_code_cell(PARAMS)
    p.metadata["tags"] = ["parameters"]
    nb.cells.append(p)
    nb.cells.append(new_code_cell(SETUP))
    for kind, src in cells:
        nb.cells.append(new_markdown_cell(src) if kind == "md" else new_code_cell(src))
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"  # stable ids: regenerating does not churn the files
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


PROBE = notebook(
    "# 01 · Probe: fail@128 hard sets (paper App. B.5, Table 2)\n\n"
    "Sample 128 solutions per pool problem at T = 1.0 with the student prompt; keep the problems solved 0/128; "
    "confirm with a second, independent batch of 128 (our addition against the winner's curse); split 50/50 "
    "with a recorded seed. Then the base model's pass@k per difficulty level.",
    [
        ("code", "res = pipeline.run_probe(cfg)\nres['summary']"),
        ("md", "## Table 2 analogue (ours) and the paper's Table 2\nThe paper's counts are for Llama-3.2-3B-Instruct on the real benchmarks."),
        ("code", "display(res['table'])\ndisplay(pipeline.PAPER_TABLE2)"),
        ("md", "## Base model pass@k per difficulty level"),
        ("code", "levels = res['levels']\nif levels is not None:\n"
                 "    display(levels.pivot(index='level', columns='k', values='pass_at_k').round(4))\n"
                 "    fig = plots.pass_at_k_by_level(levels)\n"
                 "    plots.savefig(fig, FIG / 'probe_pass_at_k_by_level.png')\nelse:\n    print('probe.level_pool is empty: skipped')"),
        ("code", "hs = res['hard_set']\nprint('hard-train examples:')\nfor p in hs.train[:5]:\n    print(' ', p.question, '->', p.answer[:80])"),
    ],
)

TINY = notebook(
    "# 00 · The tiny world: is it a genuine edge-of-learnability problem?\n\n"
    "A permutation f of 0..199; facts f(x) known with three confidences (common, shaky, confused); "
    "questions `f^d(x)` answered with a worked chain. Hard problems are long chains through many uncertain "
    "facts (0/128 twice at T = 1). This notebook measures what every later notebook relies on:\n"
    "1. the model knows easy chains, and its fact accuracy per kind;\n"
    "2. **the stepping-stone property**: RLOO on oracle stepping stones (short chains through one uncertain fact, "
    "true answers) lifts hard-test pass@32 above RLOO on hard-train alone, at equal RL steps;\n"
    "3. what the untrained model writes as a teacher (difficulty, answer correctness);\n"
    "4. **latent teaching signal**: datasets written by the untrained model, with its own answers, each used for one "
    "inner loop of meta-training size; the change of hard-train accuracy they cause (some must be > 0, or no "
    "teacher can learn).\n\n"
    "Rebuild the shipped model with `make tiny-model` (`python -m soar_lite.tiny.pretrain`).",
    [
        ("code", "from soar_lite.tiny import check\nfrom soar_lite.models import TINY_MODEL_DIR\nimport json\n"
                 "info = json.loads((TINY_MODEL_DIR / 'pretrain_info.json').read_text())\n"
                 "print({k: info[k] for k in ('steps', 'batch', 'lr', 'seed', 'seconds', 'parameters')})\n"
                 "res = check.run_world_check(cfg)\nres['summary']"),
        ("md", "## 1. Fact accuracy per kind, easy chains"),
        ("code", "display(res['pieces'].groupby('kind')[['t1_accuracy', 'greedy_correct']].agg(['mean', 'std', 'count']).round(3))\n"
                 "print('easy chains (common facts only, depth <= 3), greedy accuracy:', round(res['summary']['easy_greedy_accuracy'], 3))"),
        ("md", "## 2. Stepping stones vs Hard-Only (hard-test pass@k, mean ± SD over seeds)"),
        ("code", "final = res['final']\ndisplay(plots.mean_sd_table(final.rename(columns={'arm': 'method'})))\n"
                 "fig, ax = plots.curves(res['curves'].rename(columns={'arm': 'method'}), k=int(final.k.max()), title='hard-test pass@k during RLOO')\n"
                 "plots.savefig(fig, FIG / 'world_stones_vs_hard_only.png')"),
        ("code", "kmax = int(final.k.max())\np = final[final.k == kmax].groupby('arm').pass_at_k.agg(['mean', 'std'])\ndisplay(p)\n"
                 "gap = p.loc['stones', 'mean'] - p.loc['hard-only', 'mean']\n"
                 "print(f\"pass@{kmax}: stones - hard-only = {gap:.3f}; larger than one SD of either: {gap > p['std'].fillna(0).max()}\")"),
        ("md", "## 3. The untrained model as a teacher"),
        ("code", "lab = res['labels']\nwp = lab[lab.well_posed]\n"
                 "print(f\"{len(lab)} pairs, {res['summary']['teacher_rejected']} format rejections; well-posed {lab.well_posed.mean():.3f}\")\n"
                 "display(wp.groupby('uncertain').agg(n=('correct', 'size'), correct_share=('correct', 'mean')).round(3))\n"
                 "fig = plots.histogram(wp['uncertain'], bins=range(0, 10), xlabel='uncertain facts on the true path', "
                 "title='difficulty of teacher-written questions')\nplots.savefig(fig, FIG / 'world_teacher_difficulty.png')"),
        ("md", "## 4. Latent teaching signal: Δ hard-train accuracy after one inner loop per base-teacher dataset"),
        ("code", "d = res['deltas']\ndisplay(d.delta.describe().round(4))\n"
                 "print(f\"datasets with delta > 0: {(d.delta > 0).sum()} / {len(d)};  delta < 0: {(d.delta < 0).sum()}\")\n"
                 "fig = plots.histogram(d['delta'], bins=15, xlabel='Δ accuracy on Q_R', title='base-teacher dataset rewards')\n"
                 "plots.savefig(fig, FIG / 'world_latent_signal.png')"),
    ],
)

META = notebook(
    "# 02 · Meta-training: SOAR's teacher-student loop (paper §2, Algorithm 1)\n\n"
    "Per outer step: the teacher writes g·n QA pairs (rejection sampling) → g datasets; r students per dataset "
    "start from the baseline and run the inner RLOO loop on it; the reward is their accuracy gain on M questions "
    "resampled from hard-train; the teacher takes an RLOO step on the g dataset rewards; a promotion fires when "
    "the 3-step moving average exceeds τ (the median student of the best dataset becomes the baseline, the "
    "dataset joins the Promotion Questions, PQ). Checkpoints after every step: `--resume` continues a killed run.",
    [
        ("code", "res = pipeline.run_meta_train(cfg, resume=resume)\nm = res['metrics']\n"
                 "print(f\"{len(m)} outer steps, {int(m.promoted.sum())} promotions, {res['seconds'] / 60:.1f} min this session, \"\n"
                 "      f\"{m.seconds.mean():.1f} s per outer step\")\n"
                 "display(m[['step', 'reward_mean', 'reward_ma', 'promoted', 'baseline_acc', 'inner_steps', 'rejected', 'seconds']].round(4))"),
        ("md", "## Teacher reward with promotion markers (paper Fig. 16/19)"),
        ("code", "fig = plots.teacher_reward(m, cfg.meta.tau, ylabel=f'Δ {cfg.meta.reward_decoding} score on Q_R')\n"
                 "plots.savefig(fig, FIG / 'meta_teacher_reward.png')"),
        ("md", "## Baseline student across promotion stages, and example questions per stage (paper Fig. 6)"),
        ("code", "out = pipeline.meta_outputs(cfg)\nstages = pipeline.promotion_stage_table(cfg, out)\ndisplay(stages)\n"
                 "fig = plots.promotion_stages(stages)\nplots.savefig(fig, FIG / 'meta_promotion_stages.png')\n"
                 "pq = pd.DataFrame(out['pq'])\nif len(pq):\n"
                 "    for stage, g in pq.groupby('stage'):\n"
                 "        print(f'stage {stage}:', '  '.join(f'{q}={a}' for q, a in zip(g.question[:6], g.answer[:6])))\n"
                 "else:\n    print('no promotion: PQ is empty')"),
        ("md", "## Diagnostics: format rejections, inner-loop student reward, time per step"),
        ("code", "fig = plots.step_diagnostics(m)\nplots.savefig(fig, FIG / 'meta_diagnostics.png')"),
        ("md", "## Intrinsic-T: the same loop with the learnability reward (paper §3, App. B.4)\n"
               "R_k = mean over the dataset's questions of (0 if the baseline student never solves it in 32 samples, "
               "else 1 − its success rate). No inner loop, no promotion. Its teacher is sampled in notebooks 03/04."),
        ("code", "ires = pipeline.run_meta_train(cfg, resume=resume, reward='intrinsic', subdir='meta_intrinsic')\n"
                 "mi = ires['metrics']\nprint(f\"{len(mi)} outer steps in {ires['seconds'] / 60:.1f} min\")\n"
                 "fig = plots.teacher_reward(mi.assign(promoted=False), float('nan'), title='Intrinsic-T learnability reward')\n"
                 "plots.savefig(fig, FIG / 'meta_intrinsic_reward.png')"),
        ("md", "Saved for notebooks 03/04: `meta/pq.json` (PQ), `meta/checkpoints/promoted_*.pt` (promoted students), "
               "`meta/checkpoints/teacher.pt` (trained teacher adapter), `meta/metrics.jsonl`, and the same for "
               "`meta_intrinsic/`."),
    ],
)

EVAL = notebook(
    "# 03 · Evaluation: does SOAR unlock learning where direct RL has no signal? (paper §4, Tables 4–6, Figs 3, 5, 9)\n\n"
    "Every method trains a *fresh* student the same way (RLOO on its question set plus hard-train, or inference only "
    "for base-model and SOAR-PS) and is scored on hard-test with pass@k from 32 samples (unbiased estimator), "
    "averaged over the window after the paper's slope-based stop step. Mean ± SD over seeds.\n\n"
    "**What the tiny world can and cannot say.** It is a real instance of the paper's problem (a model that fails "
    "0/128 on a hard set, can write problems of every difficulty, and whose hard set is unlocked by some curriculum), "
    "so it can say whether the *mechanism* works: whether a teacher rewarded by a student's progress on hard problems "
    "writes better stepping stones than the untrained model (Grounded-T vs Base-T), whether that beats direct RL "
    "(vs Hard-Only), and where it lands against a curated curriculum. It cannot say anything about the paper's "
    "numbers for Llama-3.2-3B on MATH/HARP, about natural-language diversity or about transfer to OlympiadBench; "
    "those need `params/paper-*.yaml` on a GPU. The paper's numbers are shown beside ours for orientation, not "
    "comparison: scales and units differ (tiny pass@k is on a synthetic hard set).",
    [
        ("code", "from soar_lite import evaluate_stage\nres = evaluate_stage.run_evaluate(cfg)\nres['skipped']"),
        ("md", "## Table 4/5 analogue: hard-test pass@k (%), mean ± SD over seeds"),
        ("code", "table = res['table']\nours = plots.mean_sd_table(table)\n"
                 "order = [m for m in cfg.evaluate.methods if m in ours.index]\ndisplay(ours.loc[order])\n"
                 "print('Paper, MATH (Table 4; curated = MATH train (128)):')\n"
                 "display(evaluate_stage.paper_table('MATH (Table 4)'))"),
        ("md", "## Fig. 3 analogue: Δ pass@k over Hard-Only (±1 SD)"),
        ("code", "fig = plots.delta_over(table[table.method != 'base-model'])\nplots.savefig(fig, FIG / 'eval_delta_over_hard_only.png')"),
        ("md", "## Fig. 5 analogue: pass@32 over training, Grounded-T vs Base-T vs Hard-Only, and per seed Grounded-T vs Intrinsic-T"),
        ("code", "curves = res['curves']\nif len(curves):\n"
                 "    fig, ax = plots.curves(curves, 32, [m for m in ('grounded-t', 'base-t', 'hard-only') if m in set(curves.method)],\n"
                 "                           title='Fig. 5 (left) analogue: pass@32')\n"
                 "    plots.savefig(fig, FIG / 'eval_fig5_left.png')\n"
                 "    fig, ax = plots.curves(curves, 32, [m for m in ('grounded-t', 'intrinsic-t') if m in set(curves.method)],\n"
                 "                           title='Fig. 5 (right) analogue: grounded vs intrinsic teacher')\n"
                 "    plots.savefig(fig, FIG / 'eval_fig5_right.png')"),
        ("md", "## Fig. 9 analogue: pass@k curves with SOAR-PS as a horizontal line"),
        ("code", "if len(curves):\n    for k in (1, 32):\n"
                 "        fig, ax = plots.curves(curves, k, [m for m in ('hard-only', 'soar-pq', 'curated') if m in set(curves.method)],\n"
                 "                               title=f'Fig. 9 analogue: pass@{k}')\n"
                 "        ps = table[(table.method == 'soar-ps') & (table.k == k)].pass_at_k\n"
                 "        if len(ps):\n            ax.axhline(ps.mean(), color='#ff7f0e', ls='--', label='SOAR-PS')\n            ax.legend(fontsize=8)\n"
                 "        plots.savefig(fig, FIG / f'eval_fig9_pass{k}.png')"),
        ("md", "## Where the methods land (pass@32)"),
        ("code", "p32 = table[table.k == 32].groupby('method').pass_at_k.agg(['mean', 'std', 'count']).round(4)\n"
                 "display(p32.loc[[m for m in cfg.evaluate.methods if m in p32.index]])\n"
                 "display(res['stops'].groupby('method').stop_step.describe()[['mean', 'min', 'max']])\nres['timings']"),
    ],
)

ANALYZE = notebook(
    "# 04 · Questions: well-posedness vs correctness, error taxonomy, diversity (paper §5, Tables 1 and 7, v3 Fig. 15, Fig. 17/20)\n\n"
    "Finding 3 of the paper: the *structure* of the teacher's questions (well posed, coherent) matters more than the "
    "correctness of its answers; grounded teachers keep their diversity where intrinsic (learnability) teachers collapse.",
    [
        ("code", "from soar_lite import analyze_stage, analysis\nres = analyze_stage.run_analyze(cfg)\n"
                 "print('judge calls:', res['judge_calls'], '| embedder:', res['embedder'])"),
        ("md", "## Table 7 analogue: shares over all samples (ours) and the paper's (Claude-4.5-Sonnet judge)"),
        ("code", "display(res['labels'].set_index('set').round(3))\ndisplay(analysis.PAPER_TABLE7)"),
        ("md", "## Table 1 analogue: Vendi score of 128-question subsamples (ours) and the paper's (Qwen3-8B embeddings)"),
        ("code", "display(res['vendi'].round(2))\ndisplay(analysis.PAPER_TABLE1)"),
        ("md", "## Diversity over teacher training, grounded vs intrinsic (Fig. 17b/20b)"),
        ("code", "div = res['diversity']\nimport matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(7, 3.5))\n"
                 "for name, g in div.groupby('teacher'):\n    ax.plot(g.step, g.mean_pairwise_cosine_distance, marker='.', label=name)\n"
                 "ax.set_xlabel('outer step'); ax.set_ylabel('mean pairwise cosine distance'); ax.legend(); ax.grid(alpha=0.3)\n"
                 "plots.savefig(fig, FIG / 'analyze_diversity_over_training.png')"),
        ("md", "## v3 Fig. 15 analogue: hard-train + correct-only questions vs + all well-posed questions (mixed, 3 seeds)"),
        ("code", "ab = res['ablation']\nprint('question source:', res['ablation_source'])\n"
                 "display(plots.mean_sd_table(ab))\ndisplay(ab.groupby('method').n_questions.first())"),
    ],
)


def main():
    OUT.mkdir(exist_ok=True)
    for name, nb in [("00_tiny_world", TINY), ("01_probe", PROBE), ("02_meta_train", META), ("03_evaluate", EVAL),
                     ("04_analyze_questions", ANALYZE)]:
        nbformat.write(nb, OUT / f"{name}.ipynb")
        print("wrote", OUT / f"{name}.ipynb")


if __name__ == "__main__":
    main()
