"""The notebooks' set-up cell (the Colab route) in a fresh environment without soar_lite: a clone named soar_lite in
the working directory (before: found as an empty namespace package, so nothing was installed and the next import
failed), a clone under another name (before: not looked for), and a wheel. Each must end with soar_lite installed
into the fresh environment and imported from there.

The fresh environment is a venv whose only packages are the test environment's own, minus soar_lite (a path file
points at a folder of links), so pip installs soar_lite alone and no download of torch is needed."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO

SHIPPED = ["pyproject.toml", "README.md", "soar_lite", "params", "notebooks"]


def _setup_cell() -> str:
    src = (REPO / "notebooks" / "01_probe.py").read_text()
    start = src.index("# Set-up:")
    end = src.index("\n", src.index("cfg, run_dir = notebook_setup("))
    return src[start:end]


@pytest.fixture(scope="module")
def overlay(tmp_path_factory) -> Path:
    """Links to every package of this environment except soar_lite itself."""
    import site

    out = tmp_path_factory.mktemp("overlay")
    for sp in site.getsitepackages():
        for entry in Path(sp).iterdir():
            low = entry.name.lower()
            if low.startswith(("soar_lite", "soar-lite", "__editable__")) or low.endswith(".pth") or \
                    (out / entry.name).exists():
                continue
            (out / entry.name).symlink_to(entry)
    return out


def _fresh_venv(where: Path, overlay: Path) -> Path:
    base = subprocess.run([sys.executable, "-c", "import sys; print(sys._base_executable)"], capture_output=True,
                          text=True).stdout.strip()
    subprocess.run([base, "-m", "venv", "--without-pip", str(where)], check=True)
    site = next((where / "lib").glob("python3*/site-packages"))
    (site / "overlay.pth").write_text(str(overlay) + "\n")
    return where / "bin" / "python"


def _copy_repo(dest: Path) -> Path:
    dest.mkdir(parents=True)
    for name in SHIPPED:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy(src, dest / name)
    return dest


@pytest.mark.parametrize("route", ["clone named soar_lite", "clone under another name", "wheel"])
def test_the_set_up_cell_installs_soar_lite_from_the_working_directory(route, overlay, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    if route == "clone named soar_lite":
        _copy_repo(work / "soar_lite")
    elif route == "clone under another name":
        _copy_repo(work / "soar-lite-main")
    else:
        src = _copy_repo(tmp_path / "src")
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work), str(src)], check=True,
                       capture_output=True, timeout=600)
        assert list(work.glob("soar_lite-*.whl"))
    python = _fresh_venv(tmp_path / "venv", overlay)
    probe = subprocess.run([str(python), "-c", "import importlib.util as u; s = u.find_spec('soar_lite'); "
                            "print(s is None or s.origin is None)"], capture_output=True, text=True, cwd=work)
    assert probe.stdout.strip() == "True", "soar_lite must not be installed before the cell runs"
    script = ("params_path, overrides, online, install_spec = 'ci', [], False, ''\n" + _setup_cell() + "\n"
              "import soar_lite, sys\nprint('FROM', soar_lite.__file__)\nprint('PREFIX', sys.prefix)\n")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONNOUSERSITE": "1"}
    r = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd=work, env=env, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    where = next(line.split(" ", 1)[1] for line in r.stdout.splitlines() if line.startswith("FROM "))
    assert str(tmp_path / "venv") in where, where  # installed into the fresh environment, not found elsewhere


def test_the_set_up_cell_in_a_jupyter_kernel_of_a_fresh_venv_with_a_git_clone(overlay, tmp_path, monkeypatch):
    """Colab as it is: a `git clone` of this repository named soar_lite in the working directory, and report 01's
    parameters and set-up cells executed by a Jupyter kernel whose Python is a fresh venv without soar_lite (issue
    37, item 7). The cell installs the clone into that venv and the kernel imports it from there."""
    import json

    import nbformat
    from nbclient import NotebookClient

    work = tmp_path / "work"
    work.mkdir()
    subprocess.run(["git", "clone", "-q", str(REPO), str(work / "soar_lite")], check=True, timeout=300)
    python = _fresh_venv(tmp_path / "venv", overlay)
    spec = tmp_path / "jupyter" / "kernels" / "fresh-venv"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": [str(python), "-m", "ipykernel_launcher", "-f",
                                                           "{connection_file}"],
                                                  "display_name": "fresh venv", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("PYTHONNOUSERSITE", "1")
    src = (REPO / "notebooks" / "01_probe.ipynb").read_text()
    cells = nbformat.reads(src, as_version=4).cells
    params = next(c for c in cells if "parameters" in c.metadata.get("tags", []))
    setup = next(c for c in cells if "setup" in c.metadata.get("tags", []))
    nb = nbformat.v4.new_notebook()
    nb.cells = [params, nbformat.v4.new_code_cell("params_path = 'ci'\noverrides = ['results_dir=results']"), setup,
                nbformat.v4.new_code_cell("import soar_lite, sys\nprint('FROM', soar_lite.__file__)\n"
                                          "print('PREFIX', sys.prefix)")]
    NotebookClient(nb, kernel_name="fresh-venv", timeout=900, resources={"metadata": {"path": str(work)}}).execute()
    out = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    where = next(line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("FROM "))
    assert str(tmp_path / "venv") in where, where  # installed into the kernel's venv from the clone
    banner = "".join(o.get("text", "") for o in nb.cells[2].outputs)
    assert "report probe: rendered from" in banner and "torch" in banner  # the banner and the backend line
