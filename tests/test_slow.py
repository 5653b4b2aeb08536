"""Long end-to-end checks (`make test-slow`; not part of `make test`)."""
import subprocess
import sys

import pandas as pd
import pytest

from conftest import REPO


@pytest.mark.slow
def test_tiny_probe_reproduces_the_committed_hard_set(tmp_path):
    """The full tiny-world probe (~2-3.5 min) finds the committed hard set (of the powered run) again, problem for problem."""
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", str(REPO / "params" / "tiny-full.yaml"),
                        "--only", "probe", "-o", f"results_dir={tmp_path}"], capture_output=True, text=True,
                       timeout=1800, cwd=REPO)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    new = pd.read_csv(tmp_path / "tiny-full" / "tables" / "hard_sets.csv")
    committed = pd.read_csv(REPO / "results" / "tiny-full" / "tables" / "hard_sets.csv")
    assert new.equals(committed)
    assert new.n_fail[0] >= 128 and new.n_test[0] >= 64
    summary = (tmp_path / "tiny-full" / "probe" / "summary.json").read_text()
    assert '"test_subchains_of_train": 0.0' in summary
    assert (tmp_path / "tiny-full" / "probe" / "hard_test.json").read_text() == \
        (REPO / "results" / "tiny-full" / "probe" / "hard_test.json").read_text()
