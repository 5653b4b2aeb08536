"""Run-directory safety (issue 14, points 1-5): a resume never mixes runs or configurations, one writer per run
directory, a refusal writes nothing, a corrupt file is named, results stay under the results root."""
import json
import os
import pickle
import shutil
import subprocess
import sys

import pytest

from soar_lite.rundir import RunDirError, check_writable, run_lock
from soar_lite.stages import meta_train

from conftest import QUICK_META, REPO, quick_cfg

pytestmark = pytest.mark.xdist_group("test_run_safety")  # conftest's finished run, copied by each test (tests/conftest.py)


QUICK = QUICK_META
_cfg = quick_cfg  # a ci-size config with a quick grounded meta-training (conftest; fixtures finished, run_copy there)


def _steps(results):
    return [json.loads(l)["step"] for l in (results / "ci" / "meta" / "metrics.jsonl").read_text().splitlines()]


def _cli(results, *args):
    return subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", "ci", "-o", f"results_dir={results}",
                           *[a for ov in QUICK for a in ("-o", ov)], *args], capture_output=True, text=True,
                          cwd=REPO, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})


# ---- 1: resume without a state.json ----------------------------------------------------------------------
def test_a_kill_before_the_first_checkpoint_resumes_without_duplicate_steps(run_copy):
    """metrics.jsonl holds step 0, no checkpoint was ever committed: --resume starts over and clears the rows
    (before: steps [0, 0, 1])."""
    meta = run_copy / "ci" / "meta"
    rows = (meta / "metrics.jsonl").read_text().splitlines()
    (meta / "metrics.jsonl").write_text(rows[0] + "\n")
    shutil.rmtree(meta / "checkpoints")
    meta_train.run(_cfg(run_copy, "meta.outer_steps=2"), resume=True, log=lambda m: None)
    assert _steps(run_copy) == [0, 1]


def test_a_deleted_state_json_under_checkpoints_is_refused_by_name(run_copy):
    """Before: a finished run with state.json deleted restarted silently and wrote its steps twice."""
    state = run_copy / "ci" / "meta" / "checkpoints" / "state.json"
    state.unlink()
    with pytest.raises(RunDirError, match=r"state\.json is missing but .*checkpoints holds checkpoints"):
        meta_train.run(_cfg(run_copy, "meta.outer_steps=3"), resume=True, log=lambda m: None)
    assert _steps(run_copy) == [0, 1]


# ---- 2: one writer per run directory ------------------------------------------------------------------------
def test_a_second_writer_of_the_same_stage_is_refused(run_copy):
    cfg = _cfg(run_copy, "meta.outer_steps=3")
    with run_lock(cfg.run_dir, "meta_train"):  # another process is meta-training into this folder
        with pytest.raises(RunDirError, match=r"is in use by pid \d+ \(meta_train\)"):
            meta_train.run(cfg, resume=True, log=lambda m: None)
    assert _steps(run_copy) == [0, 1]


def test_a_second_soar_lite_run_into_the_same_folder_exits_2(run_copy):
    """Before: two `soar-lite run` into one directory both exited 0 with every step twice."""
    with run_lock(run_copy / "ci", "run"):
        os.environ.pop("SOAR_LITE_RUN_LOCK")  # as if held by another process, not inherited by the child
        r = _cli(run_copy, "--only", "meta_train", "--resume", "-o", "meta.outer_steps=3")
    assert r.returncode == 2 and "is in use by pid" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert _steps(run_copy) == [0, 1]


def test_stage_processes_of_one_run_inherit_its_lock(tmp_path):
    with run_lock(tmp_path / "x", "run"):
        with run_lock(tmp_path / "x", "run"):  # a child of the holder (the env var is inherited): no refusal
            pass


# ---- 3: a refused run writes nothing; a failed stage keeps the last good report --------------------------
def test_a_refused_fresh_run_leaves_config_and_reports_untouched(run_copy):
    run_dir = run_copy / "ci"
    (run_dir / "03_meta_train.ipynb").write_text("the good report")
    (run_dir / "03_meta_train.html").write_text("the good report")
    before = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and not p.name.startswith(".")}
    r = _cli(run_copy, "--only", "meta_train", "-o", "meta.g=3")
    assert r.returncode == 2, r.stderr
    assert "holds a meta-training run: pass --resume" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    after = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and not p.name.startswith(".")}
    assert after == before


def test_a_failed_stage_leaves_its_partial_notebook_and_the_last_good_report(run_copy, tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    params = nbformat.v4.new_code_cell('params_path = ""\noverrides = []\nresume = False')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("raise RuntimeError('boom')")]
    (tmp_path / "nbs").mkdir()
    nbformat.write(nb, tmp_path / "nbs" / "01_probe.ipynb")
    run_dir = run_copy / "ci"
    (run_dir / "01_probe.ipynb").write_text("the good report")
    (run_dir / "01_probe.html").write_text("the good report")
    r = _cli(run_copy, "--only", "probe", "--notebooks", str(tmp_path / "nbs"))
    assert r.returncode == 1 and "01_probe.partial.ipynb" in r.stderr
    assert (run_dir / "01_probe.ipynb").read_text() == (run_dir / "01_probe.html").read_text() == "the good report"
    assert "boom" in (run_dir / "01_probe.partial.ipynb").read_text()


# ---- 4: a resume checks what it continues ---------------------------------------------------------------------
@pytest.mark.parametrize("change, named", [("meta.g=3", "meta.g: 2 -> 3"), ("seed=1", "seed: 0 -> 1"),
                                           ("meta.n=5", "meta.n: 4 -> 5"), ("meta.M=8", "meta.M: 4 -> 8")])
def test_a_resume_with_other_values_is_refused_naming_each(run_copy, change, named):
    with pytest.raises(RunDirError, match="cannot resume .* made with other values") as e:
        meta_train.run(_cfg(run_copy, "meta.outer_steps=3", change), resume=True, log=lambda m: None)
    assert named in str(e.value)
    assert _steps(run_copy) == [0, 1]


def test_a_resume_may_run_longer(run_copy):
    meta_train.run(_cfg(run_copy, "meta.outer_steps=3", "executor.workers=1"), resume=True, log=lambda m: None)
    assert _steps(run_copy) == [0, 1, 2]


@pytest.mark.parametrize("target", ["state.json", "teacher", "baseline_student", "teacher_opt"])
def test_a_corrupt_checkpoint_file_is_named(run_copy, target):
    ckpt = run_copy / "ci" / "meta" / "checkpoints"
    path = ckpt / "state.json" if target == "state.json" else next(ckpt.glob(f"{target}-0*.pt"))
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # truncated, as by a full disk
    with pytest.raises(RunDirError, match=rf"{path.name}: cannot be read"):
        meta_train.run(_cfg(run_copy, "meta.outer_steps=3"), resume=True, log=lambda m: None)


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_the_optimizer_state_is_not_unpickled_with_arbitrary_code(run_copy, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opt = next((run_copy / "ci" / "meta" / "checkpoints").glob("teacher_opt-0*.pt"))
    import torch

    torch.save({"state": _Payload()}, opt)
    with pytest.raises(RunDirError, match=rf"{opt.name}: cannot be read"):
        meta_train.run(_cfg(run_copy, "meta.outer_steps=3"), resume=True, log=lambda m: None)
    assert not (tmp_path / "PWNED").exists()


# ---- 5: where results go ----------------------------------------------------------------------------------
def test_a_results_path_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "results").write_text("")
    r = _cli(tmp_path / "results", "--only", "probe")
    assert r.returncode == 2 and "is a file, not a folder" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_an_unwritable_results_root_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda p, mode: False)  # root ignores permission bits: simulate them
    with pytest.raises(RunDirError, match=f"{tmp_path} is not writable"):
        check_writable(tmp_path / "results" / "ci")



def test_a_resume_that_grows_outer_steps_keeps_the_teachers_schedule(run_copy):
    """Before: the cosine horizon was re-stretched mid-run (lr fell to 0 by step 1, then jumped back at step 2).
    Now the schedule keeps the horizon the run started with, and the resume says so."""
    from soar_lite.rloo import cosine_lr

    said = []
    meta_train.run(_cfg(run_copy, "meta.outer_steps=3"), resume=True, log=said.append)
    rows = [json.loads(l) for l in (run_copy / "ci" / "meta" / "metrics.jsonl").read_text().splitlines()]
    lr = _cfg(run_copy).meta.teacher.lr
    assert [r["teacher_lr"] for r in rows] == pytest.approx([cosine_lr(s, 2, lr, 0) for s in range(3)])
    assert rows[2]["teacher_lr"] == 0.0
    assert any("keeps its 2-step horizon" in m for m in said)
