"""Papermill as its users run it (issue 37, item 1): `papermill NB OUT -f params.yaml` renders that params file (its
sections arrive as injected variables and are loaded as strictly as the file), `-p params_path X` still works, and an
injected name that is neither a notebook parameter nor a params section is one error naming it."""
import json
import subprocess
import sys

import pytest

from conftest import REPO

NB = REPO / "notebooks" / "01_probe.ipynb"


def _papermill(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "papermill", str(NB), str(tmp_path / "out.ipynb"), "--cwd", str(tmp_path),
                           "-k", "python3", "--no-progress-bar", *args], capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})


def _outputs(path):
    cells = json.loads(path.read_text())["cells"]
    return "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))


@pytest.mark.whole_run(seconds=16)
def test_dash_f_renders_the_params_file_it_names(tmp_path):
    r = _papermill(tmp_path, "-f", str(REPO / "params" / "ci.yaml"), "-p", "overrides", "name=ci")
    assert r.returncode == 0, r.stderr[-2000:]
    text = _outputs(tmp_path / "out.ipynb")
    assert "this run: fail@8" in text  # ci.yaml's probe.samples, not tiny.yaml's 128
    assert "params papermill -f (injected sections)" in text
    assert (tmp_path / "results" / "ci" / "probe" / "hard_train.json").exists()
    assert not (tmp_path / "results" / "tiny").exists()


@pytest.mark.whole_run(seconds=18)
def test_dash_p_params_path_still_works(tmp_path):
    r = _papermill(tmp_path, "-p", "params_path", str(REPO / "params" / "ci.yaml"), "-y",
                   f'overrides: ["results_dir={tmp_path / "r"}"]')
    assert r.returncode == 0, r.stderr[-2000:]
    assert "this run: fail@8" in _outputs(tmp_path / "out.ipynb")
    assert (tmp_path / "r" / "ci" / "probe" / "hard_train.json").exists()


@pytest.mark.parametrize("name", ["foo", "modle"])
def test_an_unknown_injected_name_is_one_error_naming_it(tmp_path, name):
    r = _papermill(tmp_path, "-p", name, "1")
    assert r.returncode != 0
    nb = json.loads((tmp_path / "out.ipynb").read_text())
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert len(errors) == 1 and errors[0]["ename"] == "ConfigError"
    assert f"'{name}' is neither a notebook parameter" in errors[0]["evalue"] and "\n" not in errors[0]["evalue"]
    assert not (tmp_path / "results").exists()
