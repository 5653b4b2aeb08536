"""Long end-to-end checks (`make test-slow`; not part of `make test`)."""
import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO


@pytest.mark.slow
def test_tiny_probe_reproduces_the_committed_hard_set(tmp_path):
    """The full tiny-world probe (~2 min) finds the committed hard set (of the premise-gate run, the shipped world's
    committed render) again, problem for problem."""
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", str(REPO / "params" / "tiny-gate.yaml"),
                        "--only", "probe", "-o", f"results_dir={tmp_path}"], capture_output=True, text=True,
                       timeout=1800, cwd=REPO)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    new = pd.read_csv(tmp_path / "tiny-gate" / "tables" / "hard_sets.csv")
    committed = pd.read_csv(REPO / "results" / "tiny-gate" / "tables" / "hard_sets.csv")
    assert new.equals(committed)
    assert new.n_fail[0] >= 100 and new.n_test[0] >= 50
    summary = (tmp_path / "tiny-gate" / "probe" / "summary.json").read_text()
    assert '"test_subchains_of_train": 0.0' in summary
    assert (tmp_path / "tiny-gate" / "probe" / "hard_test.json").read_text() == \
        (REPO / "results" / "tiny-gate" / "probe" / "hard_test.json").read_text()


@pytest.mark.slow
def test_make_tiny_model_rebuilds_the_shipped_weights(tmp_path):
    """`make tiny-model`'s command (2,500 steps, 2 threads, ~10 min) gives the shipped tensors again, bit for bit."""
    import os

    import torch
    from safetensors.torch import load_file

    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    r = subprocess.run([sys.executable, "-m", "soar_lite.tasks.tiny.pretrain", "--out", str(tmp_path / "model")],
                       capture_output=True, text=True, timeout=3600, cwd=REPO, env=env)
    assert r.returncode == 0, r.stderr[-3000:]
    built = load_file(tmp_path / "model" / "model.safetensors")
    shipped = load_file(REPO / "soar_lite" / "tasks" / "tiny" / "model" / "model.safetensors")
    assert built.keys() == shipped.keys() and all(torch.equal(built[k], shipped[k]) for k in built)
