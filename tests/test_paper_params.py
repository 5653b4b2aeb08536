"""The paper and Colab params files validate, and their first stage runs on a 3-problem slice with the
tiny model substituted through overrides, so the configs cannot rot on a CPU-only machine."""
from pathlib import Path

import pytest

from soar_lite.config import load_config
from soar_lite.pipeline import run_probe

REPO = Path(__file__).resolve().parent.parent
GPU_PARAMS = sorted(p for p in (REPO / "params").glob("*.yaml") if p.stem.startswith(("paper", "colab")))


def test_gpu_params_exist():
    assert {p.stem for p in GPU_PARAMS} >= {"paper-math", "paper-harp", "colab-small"}


def test_paper_params_are_the_papers_table3():
    cfg = load_config(REPO / "params" / "paper-math.yaml")
    m = cfg.meta
    assert (m.g, m.n, m.r, m.M, m.tau, m.ma_window, m.outer_steps, m.inner_steps) == (4, 64, 4, 64, 0.01, 3, 200, 10)
    assert (m.student.lr, m.student.kl_coef, m.student.batch_questions, m.student.group_size) == (1e-5, 0.001, 8, 32)
    assert (cfg.probe.samples, cfg.task.student_max_new_tokens, cfg.model.path) == (128, 1024, "meta-llama/Llama-3.2-3B-Instruct")


@pytest.mark.parametrize("path", GPU_PARAMS, ids=[p.stem for p in GPU_PARAMS])
def test_first_stage_runs_on_a_slice_with_the_tiny_model(path, tmp_path):
    cfg = load_config(path, [f"results_dir={tmp_path}", "model.path=tiny", "model.backend=hf", "model.dtype=float32",
                             "probe.limit=3", "probe.samples=2", "probe.confirm_samples=2", "probe.level_pool=''",
                             "task.student_max_new_tokens=4"])
    res = run_probe(cfg, log=lambda m: None)
    assert res["summary"]["n_pool"] == 3
    assert (tmp_path / path.stem / "tables" / "hard_sets.csv").exists()
