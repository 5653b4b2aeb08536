"""notebook_sources.py: the committed .ipynb files are generated from the jupytext sources, and stay in sync;
each notebook has one tagged parameters cell and calls exactly one stage."""
import json

import pytest

from conftest import REPO
from soar_lite.notebook_sources import render, sources, sync
from soar_lite.stages import STAGES

NOTEBOOKS = sources(REPO / "notebooks")
REPORTS = {"00_your_world.ipynb", "06_compare.ipynb"}  # notebooks that run no stage: the tutorial, soar-lite compare
STAGE_NOTEBOOKS = [p for p in NOTEBOOKS if p.with_suffix(".ipynb").name not in REPORTS]


def test_every_stage_has_a_source_and_nothing_else_is_there():
    assert sorted(p.with_suffix(".ipynb").name for p in STAGE_NOTEBOOKS) == sorted(s.notebook for s in STAGES.values())
    assert {p.with_suffix(".ipynb").name for p in NOTEBOOKS} - {s.notebook for s in STAGES.values()} == REPORTS


def test_ipynb_files_are_in_sync_with_their_sources():
    assert sync(REPO / "notebooks", check=True) == [], "run: python -m soar_lite.notebook_sources (make notebooks)"


@pytest.mark.parametrize("source", STAGE_NOTEBOOKS, ids=[p.stem for p in STAGE_NOTEBOOKS])
def test_one_parameters_cell_and_one_stage_call(source):
    nb = json.loads(render(source))
    tagged = [c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    stage = source.stem.split("_", 1)[1]
    assert code.count(".run(cfg") == 1 and f"from soar_lite.stages import {stage}" in code


def test_regenerating_a_source_gives_the_same_bytes(tmp_path):
    src = tmp_path / "01_probe.py"
    src.write_text((REPO / "notebooks" / "01_probe.py").read_text())
    assert sync(tmp_path) == [tmp_path / "01_probe.ipynb"]
    first = (tmp_path / "01_probe.ipynb").read_bytes()
    assert sync(tmp_path) == [] and (tmp_path / "01_probe.ipynb").read_bytes() == first


def test_the_compare_notebook_has_one_parameters_cell_and_reads_runs_only():
    nb = json.loads(render(REPO / "notebooks" / "06_compare.py"))
    assert len([c for c in nb["cells"] if "parameters" in c["metadata"].get("tags", [])]) == 1
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "compare.load_run" in code and ".run(cfg" not in code


@pytest.mark.whole_run(seconds=19)
def test_the_your_world_tutorial_renders(tmp_path):
    """notebooks/00_your_world: a world written in a cell, probed, one outer step, the table of which function calls
    which Task method -- executed as a reader would (papermill, a fresh kernel, another working directory)."""
    import papermill as pm

    out = tmp_path / "00_your_world.ipynb"
    pm.execute_notebook(str(REPO / "notebooks" / "00_your_world.ipynb"), str(out), kernel_name="python3",
                        parameters={"results_dir": str(tmp_path / "res")}, cwd=str(tmp_path), progress_bar=False)
    nb = json.loads(out.read_text())
    text = "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   for c in nb["cells"] for o in c.get("outputs", []))
    assert "ILL POSED" in text and "well posed" in text
    assert "sample_round" in text and "rl_train" in text and "find_hard_set" in text  # where the methods are called
