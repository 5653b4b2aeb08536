"""Strict params loading: unknown keys, wrong types and missing files are named; nothing is written."""
import subprocess
import sys
from pathlib import Path

import pytest

from soar_lite.config import ConfigError, load_config

PARAMS = sorted((Path(__file__).parent.parent / "params").glob("*.yaml"))


@pytest.mark.parametrize("path", PARAMS, ids=[p.stem for p in PARAMS])
def test_every_shipped_params_file_loads(path):
    cfg = load_config(path)
    assert cfg.name == path.stem


def test_unknown_key_is_named(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("meta:\n  tua: 0.01\n")
    with pytest.raises(ConfigError, match=r"unknown key 'tua'") as e:
        load_config(p)
    assert "meta" in str(e.value) and str(p) in str(e.value)


def test_wrong_type_is_named(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("meta:\n  g: four\n")
    with pytest.raises(ConfigError, match=r"meta\.g: expected int"):
        load_config(p)


def test_nested_section_unknown_key(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("meta:\n  student:\n    lr: 1.0e-4\n    gruop_size: 8\n")
    with pytest.raises(ConfigError, match=r"meta\.student: unknown key 'gruop_size'"):
        load_config(p)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="params file not found"):
        load_config(tmp_path / "nope.yaml")


def test_invalid_choice(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("model:\n  backend: vllm\n")
    with pytest.raises(ConfigError, match="model.backend"):
        load_config(p)


def test_overrides_apply_and_are_checked(tmp_path):
    p = tmp_path / "ok.yaml"
    p.write_text("meta:\n  g: 4\n")
    assert load_config(p, ["meta.g=3", "model.path=tiny"]).meta.g == 3
    with pytest.raises(ConfigError, match="unknown key 'nope'"):
        load_config(p, ["meta.nope=1"])


def test_cli_rejects_unknown_key_before_writing_anything(tmp_path):
    p = tmp_path / "typo.yaml"
    p.write_text(f"name: typo\nresults_dir: {tmp_path / 'results'}\nprobe:\n  sampels: 128\n")
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", str(p)], capture_output=True, text=True)
    assert r.returncode == 2
    assert "unknown key 'sampels'" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()


def test_shipped_params_resolve_by_name_from_any_directory(tmp_path, monkeypatch):
    """A pip-installed copy (Colab) has no params/ folder beside the notebook: names fall back to the shipped files."""
    monkeypatch.chdir(tmp_path)
    assert load_config("params/paper-math.yaml").name == "paper-math"
    assert load_config("colab-small").model.path.startswith("Qwen/")
    with pytest.raises(ConfigError, match=r"shipped params: .*tiny"):
        load_config("params/paper-mth.yaml")
    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "tiny.yaml").write_text("name: mine\n")
    assert load_config("params/tiny.yaml").name == "mine"  # a file that exists always wins


def test_grounded_teacher_checkpoint_follows_evaluate_teacher_step():
    from soar_lite.pipeline import trained_teacher_path

    harp = load_config(Path(__file__).parent.parent / "params" / "paper-harp.yaml")
    assert (harp.meta.outer_steps, harp.evaluate.teacher_step) == (200, 170)  # §2.3
    assert trained_teacher_path(harp, "meta").name == "teacher_step00170.pt"
    assert trained_teacher_path(harp, "meta_intrinsic").name == "teacher.pt"
    with pytest.raises(ConfigError, match="teacher_snapshots"):
        load_config(Path(__file__).parent.parent / "params" / "paper-harp.yaml", ["meta.teacher_snapshots=[]"])
