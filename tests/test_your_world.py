"""A world defined outside soar_lite (examples/partial_world): named in the params as module:Factory with its own
settings, imported in the notebook kernels, the worker processes and the Ray actors, run end to end by `soar-lite run`
from another working directory, with no edit to the package; its teacher writes ill-posed questions, so the
well-posed vs correct axis of Finding 3 is not degenerate. Bad names and settings are one line."""
import json
import os
import subprocess
import sys

import pandas as pd
import pytest

from soar_lite.config import ConfigError, load_config

from conftest import REPO

PARAMS = REPO / "examples" / "partial_world" / "params.yaml"


def _run(tmp_path, *args, timeout=900):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)  # nothing but the params file tells the processes where the world is
    return subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", str(PARAMS), "-o", f"results_dir={tmp_path}",
                           "--progress-every", "0", *args], capture_output=True, text=True, cwd=tmp_path, env=env,
                          timeout=timeout)


def test_the_example_world_runs_end_to_end_on_two_worker_processes(tmp_path):
    r = _run(tmp_path, "--jobs", "2")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    run = tmp_path / "partial_world"
    for nb in ("01_probe", "03_meta_train", "04_evaluate", "05_analyze"):
        cells = json.loads((run / f"{nb}.ipynb").read_text())["cells"]
        assert not [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"], nb
    assert not (run / "02_tiny_world.ipynb").exists()  # the world has no report of its own
    labels = pd.read_csv(run / "tables" / "question_labels.csv").set_index("set")
    assert 0.3 < labels.loc["base-t", "well_posed_share"] < 0.9  # ill-posed questions exist: the axis is not degenerate
    ablation = pd.read_csv(run / "tables" / "wellposed_ablation.csv")
    assert {"correct-only pq", "well-posed pq"} <= set(ablation.method)
    assert "partial_world:make" in (run / "config.yaml").read_text()


def test_the_example_world_imports_in_ray_actors(tmp_path):
    pytest.importorskip("ray")
    assert _run(tmp_path, "--only", "probe").returncode == 0
    r = _run(tmp_path, "--only", "meta_train", "-o", "executor.kind=ray", "-o", "meta.outer_steps=1",
             "-o", "meta.teachers=[grounded]")
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    rows = (tmp_path / "partial_world" / "meta" / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 1 and json.loads(rows[0])["diagnostics"]["n"] == 16


@pytest.mark.parametrize("override, message", [
    ("task.name=nope_mod:make", "cannot import 'nope_mod'"),
    ("task.name=partial_world:nope", "has no 'nope'"),
    ("task.settings.undefined_shar=0.2", "unknown setting(s) undefined_shar"),
    ("task.settings.undefined_share=1.5", "undefined_share must be a number in [0, 1)"),
    ("task.module_path=/no/such/folder", "is not a folder"),
])
def test_a_bad_world_is_one_line_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=r"task\.(name|settings)") as e:
        load_config(PARAMS, [override])
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_built_in_world_takes_no_settings():
    with pytest.raises(ConfigError, match="the built-in world 'tiny' takes no settings"):
        load_config("ci", ["task.settings.x=1"])
