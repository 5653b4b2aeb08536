"""Issue 32 -- nothing silently wrong. Each reproduction of the hostile-user review ends in one line naming the
file or key, or does the right thing: a half-trained teacher is refused by the evaluation, a checkpoint saved again
keeps its bytes and its students, a world's folder is the folder wherever the command starts, the tmp sweep touches
only the package's own files, deep params and failing worlds are one line, a damaged saved student (of evaluate or
of analyze's ablation) is trained again by name, a damaged GGUF cache is repaired. (`compare`'s checks are in
test_compare.py; report 04 for every subset of arms in test_report_arms.py.)"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from soar_lite.config import ConfigError, load_config, resume_key
from soar_lite.rundir import RunDirError, remove_stale_tmp
from soar_lite.stages import evaluate, meta_train, probe

from conftest import QUICK_META, REPO, quick_cfg

pytestmark = pytest.mark.xdist_group("test_reliability")  # conftest's finished run, copied by each test (tests/conftest.py)


QUICK = QUICK_META
DEAD_PID = 4_000_000  # above the kernel's pid_max: never a live process
_cfg = quick_cfg  # a ci-size config with a quick grounded meta-training (conftest; fixtures finished, run_copy there)


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


# ---- 1: a half-trained teacher ------------------------------------------------------------------------------
def test_evaluation_refuses_a_teacher_whose_meta_training_has_not_finished(run_copy):
    cfg = _cfg(run_copy, "meta.outer_steps=6", "evaluate.methods=[hard-only, grounded-t]")
    with pytest.raises(RunDirError, match=r"meta.* holds the teacher of outer step 2 of 6: meta-training has not "
                                          r"finished") as e:
        evaluate.run(cfg, log=lambda m: None)
    assert "\n" not in str(e.value) and "allow_unfinished_teacher" in str(e.value)
    assert not (run_copy / "ci" / "tables" / "pass_at_k.csv").exists()  # refused before anything was written
    meta_train.check_finished(_cfg(run_copy, "meta.outer_steps=6", "evaluate.allow_unfinished_teacher=true"),
                              ["grounded"], "evaluate")  # asked for explicitly: no refusal
    meta_train.check_finished(_cfg(run_copy, "meta.outer_steps=2"), ["grounded"], "evaluate")  # finished
    # the methods that read no teacher are not held back by one
    meta_train.check_finished(cfg, evaluate.teacher_kinds(["hard-only", "base-t", "curated"]), "evaluate")
    assert evaluate.teacher_kinds(["soar-pq", "grounded-t@mixed", "base-t"]) == ["grounded"]


def test_teacher_run_refuses_a_missing_an_unfinished_or_another_models_run(run_copy):
    other = ["name=other", "evaluate.methods=[hard-only, grounded-t]"]
    with pytest.raises(RunDirError, match="'nonexistent' is not a run under"):
        evaluate.preflight(_cfg(run_copy, *other, "evaluate.teacher_run=nonexistent"))
    with pytest.raises(RunDirError, match="teacher_run 'ci'.*outer step 2 of 6"):
        evaluate.preflight(_cfg(run_copy, *other, "evaluate.teacher_run=ci", "meta.outer_steps=6"))
    with pytest.raises(RunDirError, match=r"other model settings \(model.lora_alpha: 16 there, 32 here; model.lora_r: "
                                          r"8 there, 16 here\)"):
        evaluate.preflight(_cfg(run_copy, *other, "evaluate.teacher_run=ci", "meta.outer_steps=2", "model.lora_r=16",
                                "model.lora_alpha=32"))
    evaluate.preflight(_cfg(run_copy, *other, "evaluate.teacher_run=ci", "meta.outer_steps=2"))  # a finished run


def test_the_cli_refuses_an_unknown_teacher_run_before_anything_runs(run_copy):
    shutil.copytree(run_copy / "ci" / "probe", run_copy / "other" / "probe")  # its own probe, others' teachers
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", "ci", "-o", f"results_dir={run_copy}", "-o",
                        "name=other", "-o", "evaluate.teacher_run=nonexistent", "--only", "evaluate"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 2 and "is not a run under" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in (run_copy / "other").iterdir()) == ["probe"]  # nothing written


# ---- 3: a checkpoint's bytes, and the students keyed by its tensors ---------------------------------------
def test_saving_equal_tensors_twice_gives_equal_bytes_and_one_digest(tmp_path):
    import torch

    from soar_lite.models import save_snapshot, snapshot_digest

    snap = {"a.lora_A": torch.arange(6, dtype=torch.float32).reshape(2, 3), "b": torch.ones(2, dtype=torch.bfloat16)}
    save_snapshot(snap, tmp_path / "one.pt")
    save_snapshot({k: v.clone() for k, v in snap.items()}, tmp_path / "two.pt")
    assert _md5(tmp_path / "one.pt") == _md5(tmp_path / "two.pt")
    assert snapshot_digest(tmp_path / "one.pt") == snapshot_digest(tmp_path / "two.pt")
    # an archive written the old way (torch.save names its folder after the file) has other bytes, the same tensors
    torch.save(snap, tmp_path / "old.pt")
    assert _md5(tmp_path / "old.pt") != _md5(tmp_path / "one.pt")
    assert snapshot_digest(tmp_path / "old.pt") == snapshot_digest(tmp_path / "one.pt")
    snap["b"][0] = 2
    save_snapshot(snap, tmp_path / "three.pt")
    assert snapshot_digest(tmp_path / "three.pt") != snapshot_digest(tmp_path / "one.pt")
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    assert snapshot_digest(tmp_path / "bad.pt").startswith("unreadable:")


def test_a_resume_of_a_finished_run_keeps_the_teachers_bytes(run_copy):
    teacher = run_copy / "ci" / "meta" / "checkpoints" / "teacher.pt"
    before = _md5(teacher)
    meta_train.run(_cfg(run_copy, "meta.outer_steps=2"), resume=True, log=lambda m: None)
    assert _md5(teacher) == before


def test_after_a_kill_at_evaluate_and_a_resume_every_finished_student_is_reused(run_copy):
    """The kill leaves 2 of 3 students saved and no tables; `--resume` of meta-training saves teacher.pt again: the
    next evaluation trains only the one student it lacks, and its tables equal an uninterrupted render's."""
    cfg = _cfg(run_copy, "meta.outer_steps=2", "evaluate.methods=[hard-only, grounded-t]", "evaluate.seeds=1",
               "evaluate.steps=2", "evaluate.eval_every=1")
    evaluate.run(cfg, log=lambda m: None)
    full = (run_copy / "ci" / "tables" / "pass_at_k.csv").read_text()
    students = sorted((run_copy / "ci" / "evaluate" / "students").glob("*.json"))
    assert len(students) == 2
    students[0].unlink()
    shutil.rmtree(run_copy / "ci" / "tables")
    meta_train.run(cfg, resume=True, log=lambda m: None)
    said = []
    evaluate.run(cfg, log=said.append)
    assert "1 of 2 students found finished" in " ".join(said)
    assert (run_copy / "ci" / "tables" / "pass_at_k.csv").read_text() == full


# ---- 4: task.module_path, wherever the command starts ------------------------------------------------------
def test_a_worlds_folder_is_the_same_key_from_any_working_directory(tmp_path, monkeypatch):
    params = REPO / "examples" / "partial_world" / "params.yaml"
    from soar_lite.stages.evaluate import student_key

    keys = []
    for cwd in (REPO, tmp_path):  # each process resolves the world's folder from where it was started
        monkeypatch.chdir(cwd)
        cfg = load_config(str(params), [f"results_dir={tmp_path}"])
        keys.append((cfg.task.module_path, resume_key(cfg), student_key(cfg, "hard-only", 0)))
    assert keys[0][0] != keys[1][0]  # each relative to its own working directory ...
    assert keys[0][1:] == keys[1][1:]  # ... and one folder: a resume from elsewhere is not refused, students kept


# ---- 5: the tmp sweep touches only the package's own files ------------------------------------------------
def test_the_stale_tmp_sweep_removes_only_files_of_dead_writers(tmp_path):
    run = tmp_path / "run"
    (run / "probe").mkdir(parents=True)
    mine = [run / f"pass_at_k.csv.{DEAD_PID}.tmp", run / "probe" / f"hard_train.json.{DEAD_PID}.tmp"]
    live = run / f"state.json.{os.getpid()}.tmp"
    users = [run / "notes.tmp", run / "probe" / "draft.v2.tmp", run / "x.12ab.tmp"]
    for f in mine + users + [live]:
        f.write_text("x")
    (run / "cache.tmp").mkdir()
    (run / f"folder.{DEAD_PID}.tmp").mkdir()
    (run / f"link.{DEAD_PID}.tmp").symlink_to(run / "notes.tmp")
    assert remove_stale_tmp(run) == 2
    assert not any(f.exists() for f in mine)
    assert all(f.exists() for f in users + [live, run / "cache.tmp", run / f"folder.{DEAD_PID}.tmp"])
    assert (run / f"link.{DEAD_PID}.tmp").is_symlink()


def test_a_run_starts_in_a_folder_holding_a_tmp_folder(run_copy):
    (run_copy / "ci" / "cache.tmp").mkdir()
    from soar_lite.cli import preflight

    preflight(_cfg(run_copy, "meta.outer_steps=2"), ["probe"], resume=False)
    assert (run_copy / "ci" / "cache.tmp").is_dir()


# ---- 6 and the params rough edges: one line each ------------------------------------------------------------
def _chain(tmp_path, n):
    for i in range(n):
        (tmp_path / f"p{i}.yaml").write_text(f"extends: p{i + 1}.yaml\n" if i < n - 1 else "seed: 1\n")
    return tmp_path / "p0.yaml"


@pytest.mark.parametrize("write, says", [
    (lambda d: _chain(d, 1200), "extends: a chain of more than 16 params files"),
    (lambda d: (d / "x.yaml").write_text("description:" + " [" * 5000 + " ]" * 5000 + "\n") and d / "x.yaml",
     "levels deep"),
    (lambda d: (d / "x.yaml").write_text("".join(f"{'  ' * i}k{i}:\n" for i in range(3000)) + "  " * 3000 + "v: 1\n")
     and d / "x.yaml", "levels deep"),
    (lambda d: (d / "x.yaml").write_text("extends: null\nseed: 1\n") and d / "x.yaml",
     "extends: expected the name or path of one params file, got None"),
    (lambda d: (d / "x.yaml").write_text("extends: ''\nseed: 1\n") and d / "x.yaml",
     "extends: expected the name or path of one params file"),
    (lambda d: ((d / "sub").mkdir(), (d / "x.yaml").write_text("extends: sub\n"))[1] and d / "x.yaml",
     "is not a regular file"),
    (lambda d: (os.mkfifo(d / "fifo.yaml"), (d / "x.yaml").write_text("extends: fifo.yaml\n"))[1] and d / "x.yaml",
     "is not a regular file"),
])
def test_deep_or_odd_params_are_one_line(tmp_path, write, says):
    path = write(tmp_path)
    with pytest.raises(ConfigError, match=says.replace("(", r"\(").replace(")", r"\)")) as e:
        load_config(str(path))
    assert "\n" not in str(e.value)


# ---- 7: a world that fails in any way ----------------------------------------------------------------------
WORLDS = {
    "import_raises": ("raise RuntimeError('boom at import')\n", "importing 'bad' failed (RuntimeError: boom at import)"),
    "syntax": ("def make(:\n", "importing 'bad' failed (SyntaxError"),
    "exits_0": ("import sys\nsys.exit(0)\n", "SystemExit(0): a world must not exit the process"),
    "factory_raises": ("def make(cfg):\n    raise RuntimeError('no world today')\n",
                       "its factory failed (RuntimeError: no world today)"),
    "factory_exits": ("def make(cfg):\n    raise SystemExit(3)\n", "its factory failed (SystemExit(3)"),
    "factory_recurses": ("def make(cfg):\n    return make(cfg)\n", "its factory failed (RecursionError"),
}


@pytest.mark.parametrize("case", sorted(WORLDS))
def test_a_failing_world_is_one_line_naming_it(tmp_path, case):
    source, says = WORLDS[case]
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "bad.py").write_text(source)
    name = f"bad_{case}"  # a module name per case: Python caches an imported module
    (tmp_path / "w" / f"{name}.py").write_text(source)
    params = tmp_path / "params.yaml"
    params.write_text(f"extends: ci\ntask:\n  name: {name}:make\n  module_path: w\n")
    with pytest.raises(ConfigError, match="task.name") as e:
        load_config(str(params))
    assert says.replace("'bad'", repr(name)) in str(e.value) and "\n" not in str(e.value)
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", str(params), "-o", f"results_dir={tmp_path}"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and f"{name}:make" in r.stderr, r.stderr
    assert not (tmp_path / "params").exists()  # nothing was written


@pytest.mark.parametrize("name", [":make", "bad:", "a b:make", "bad:ma-ke"])
def test_a_malformed_world_name_is_named_as_such(name):
    with pytest.raises(ConfigError, match="expected package.module:Factory"):
        load_config("ci", [f"task.name='{name}'"])


def test_the_two_turn_check_names_every_missing_hook():
    from soar_lite.tasks.tiny import TinyTask, TinyWorld

    from soar_lite.tasks import Task

    class HalfTwoTurn(TinyTask):  # the first call's prompt only: the other three hooks left as the base class has them
        parse_teacher_question = Task.parse_teacher_question
        teacher_answer_prompt = Task.teacher_answer_prompt
        parse_teacher_answer = Task.parse_teacher_answer

    task = HalfTwoTurn(TinyWorld())
    assert task.missing_two_turn_hooks() == ["parse_teacher_question", "teacher_answer_prompt", "parse_teacher_answer"]
    assert not task.has_two_turn_teacher()


# ---- 8: a damaged saved student ---------------------------------------------------------------------------
GOOD_CURVE = {"step": [0, 1], "k": [1, 1], "pass_at_k": [0.0, 0.5], "method": ["m", "m"], "seed": [0, 0]}
GOOD = {"finals": [{"method": "m", "seed": 0, "k": 1, "pass_at_k": 0.5}], "curve": GOOD_CURVE, "n_questions": 4,
        "seconds": 1.5, "stop": {"method": "m", "seed": 0, "stop_step": 1, "window_points": 1, "train_reward_last": 0.1}}


@pytest.mark.parametrize("change, says", [
    ({}, None),
    ({"curve": 5}, "the curve is not columns"),
    ({"seconds": None}, "seconds missing"),
    ({"finals": [{"method": "m", "seed": 0, "k": 1}]}, "a finals row is malformed"),
    ({"finals": [{"method": "m", "seed": 0, "k": 1, "pass_at_k": 1.5}]}, "a finals row is malformed"),
    ({"finals": []}, "no finals rows"),
    ({"curve": dict(GOOD_CURVE, step=[0])}, "differ in length"),
    ({"curve": dict(GOOD_CURVE, pass_at_k=[0.0, "x"])}, "not a number"),
    ({"stop": {"stop_step": 1}}, "the stop row is malformed"),
    ({"n_questions": "four"}, "n_questions missing"),
])
def test_every_malformed_field_of_a_saved_student_is_found(change, says):
    res = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    assert evaluate.student_problem(res) == says or (says and says in evaluate.student_problem(res))


def test_an_inference_student_needs_no_curve():
    assert evaluate.student_problem({"finals": GOOD["finals"], "seconds": 0.2}) is None


@pytest.mark.parametrize("content", ['{"key": "k", "result": {"curve": 5, "finals": []}}', "{not json",
                                     '["a list"]', '{"key": "k", "result": ' + json.dumps(dict(GOOD, seconds="x")) + "}"])
def test_a_damaged_saved_student_is_trained_again_by_name(tmp_path, content):
    path = tmp_path / "evaluate" / "students" / "m-s0.json"
    path.parent.mkdir(parents=True)
    path.write_text(content)
    said = []
    assert evaluate.cached_student(path, "k", said.append) is None
    assert len(said) == 1 and "m-s0.json: damaged" in said[0] and "trained again" in said[0]
    path.write_text(json.dumps({"key": "k", "result": GOOD}))
    res = evaluate.cached_student(path, "k", said.append)
    assert res is not None and list(res["curve"].step) == [0, 1] and len(said) == 1
    assert evaluate.cached_student(path, "other key", said.append) is None and len(said) == 1  # silently: params moved


# ---- 8b: analyze keeps its finished ablation students -------------------------------------------------------
ROW = {"method": "hard-only", "n_questions": 0, "seed": 0, "k": 1, "pass_at_k": 0.25}


@pytest.mark.parametrize("rows, says", [
    ([ROW], None),
    ([], "no pass@k rows"),
    ("rows", "no pass@k rows"),
    ([dict(ROW, pass_at_k=1.5)], "a pass@k row is malformed"),
    ([dict(ROW, k=0)], "a pass@k row is malformed"),
    ([dict(ROW, seed="0")], "a pass@k row is malformed"),
    ([dict(ROW, method=None)], "a pass@k row is malformed"),
    ([{k: v for k, v in ROW.items() if k != "n_questions"}], "a pass@k row is malformed"),
    ([ROW, 5], "a pass@k row is malformed"),
])
def test_every_malformed_row_of_a_saved_ablation_student_is_found(rows, says):
    from soar_lite.stages.analyze import ablation_row_problem

    found = ablation_row_problem(rows)
    assert found == says or (says and found and found.startswith(says))


def test_a_killed_analyze_trains_only_the_ablation_students_it_lacks(tmp_path, monkeypatch):
    """wellposed_ablation saves each finished student with its key: run again it trains none; a changed question
    retrains only its arm's students (same table otherwise); a damaged file is named and retrained."""
    from soar_lite.stages import analyze

    trained = []

    def fake_run_jobs(fn, jobs, executor=1, on_done=None):  # each job's rows from its arm, questions and seed
        out = []
        for job in jobs:
            trained.append((job[1], job[3]))
            rows = [{"method": job[1], "n_questions": len(job[2]), "seed": job[3], "k": 1,
                     "pass_at_k": (len(job[2]) + job[3]) / 10}]
            on_done(job, rows)
            out.append(rows)
        return out

    monkeypatch.setattr(analyze, "run_jobs", fake_run_jobs)
    cfg = _cfg(tmp_path, "analyze.ablation.seeds=2")
    pairs = [("f^1(001)", "002"), ("f^1(003)", "004"), ("f^9(001)", "005")]
    labels = [{"is_correct": True, "is_well_posed": True, "error_type": "None"},
              {"is_correct": False, "is_well_posed": True, "error_type": "Wrong_Answer"},
              {"is_correct": False, "is_well_posed": False, "error_type": "Ill_Posed"}]
    said = []
    first = analyze.wellposed_ablation(cfg, pairs, labels, "pq", said.append)
    assert len(trained) == 8 and len(list(cfg.layout.analyze_student("hard-only", 0).parent.glob("*.json"))) == 8
    trained.clear()
    again = analyze.wellposed_ablation(cfg, pairs, labels, "pq", said.append)
    assert trained == [] and again.equals(first) and any("8 of 8 students found finished" in m for m in said)
    changed = [("f^1(001)", "002"), ("f^1(003)", "009"), ("f^9(001)", "005")]  # a wrong answer changes: its arm only
    analyze.wellposed_ablation(cfg, changed, labels, "pq", said.append)
    assert sorted(trained) == [("well-posed pq", 0), ("well-posed pq", 1)]
    trained.clear()
    cfg.layout.analyze_student("hard-only", 1).write_text("{not json")
    said.clear()
    analyze.wellposed_ablation(cfg, changed, labels, "pq", said.append)
    assert trained == [("hard-only", 1)] and any("hard-only-s1.json: damaged" in m and "trained again" in m
                                                 for m in said)
    trained.clear()
    analyze.wellposed_ablation(_cfg(tmp_path, "analyze.ablation.seeds=2", "analyze.ablation.steps=7"), changed,
                               labels, "pq", said.append)
    assert len(trained) == 8  # the ablation's own params are in the key
    trained.clear()
    analyze.wellposed_ablation(_cfg(tmp_path, "analyze.ablation.seeds=2", "analyze.ablation.steps=7",
                                    "analyze.vendi_bootstrap=7", "meta.outer_steps=3"), changed, labels, "pq",
                               said.append)
    assert trained == []  # what only other tables or meta-training read is not (its questions are the key's own)


# ---- 10: the GGUF cache -------------------------------------------------------------------------------------
def _fake_converted(folder: Path, *, config=True, model_type=True, weights="whole", tokenizer=True):
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    if config:
        (folder / "config.json").write_text(json.dumps({"model_type": "llama"} if model_type else {"x": 1}))
    if weights:
        save_file({"w": torch.ones(64, 64)}, str(folder / "model.safetensors"))
        if weights == "truncated":
            data = (folder / "model.safetensors").read_bytes()
            (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    if tokenizer:
        (folder / "tokenizer.json").write_text("{}")
    return folder


@pytest.mark.parametrize("damage, says", [
    ({}, None), ({"config": False}, "config.json unreadable"), ({"model_type": False}, "config.json has no model_type"),
    ({"weights": None}, "no *.safetensors"), ({"weights": "truncated"}, "model.safetensors unreadable"),
    ({"tokenizer": False}, "no tokenizer files"),
])
def test_a_converted_gguf_folder_is_checked(tmp_path, damage, says):
    from soar_lite.models import gguf_folder_problem

    why = gguf_folder_problem(_fake_converted(tmp_path / "m", **damage))
    assert why == says or (says and why.startswith(says))


def test_a_broken_gguf_cache_is_repaired_and_stale_conversions_swept(tmp_path, monkeypatch):
    import transformers

    from soar_lite import models

    source = tmp_path / "m.gguf"
    source.write_bytes(b"GGUF")
    monkeypatch.setenv("SOAR_LITE_CACHE", str(tmp_path / "cache"))
    calls = []

    class Fake:
        def __init__(self):
            self.config = type("C", (), {})()

        def save_pretrained(self, folder):
            calls.append(folder)
            _fake_converted(Path(folder))

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", lambda *a, **k: Fake())
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", lambda *a, **k: Fake())
    st = source.stat()
    dest = models.gguf_cache_dir() / f"m-{st.st_size}-{int(st.st_mtime)}"
    _fake_converted(dest, config=False)  # a broken copy: no config.json
    stale = _fake_converted(dest.with_name(dest.name + f".{DEAD_PID}.tmp"))  # a conversion killed mid-way
    said = []
    assert models.converted_gguf(source, said.append) == dest
    assert models.gguf_folder_problem(dest) is None and not stale.exists()
    assert "damaged (config.json unreadable" in said[0]
    n = len(calls)
    assert models.converted_gguf(source) == dest and len(calls) == n  # whole: not converted again


# ---- the rough edges: a run name, --jobs, a pool of copies, one question with two answers ------------------------
@pytest.mark.parametrize("name", ["a\nb", " lead", "tab\there"])
def test_a_run_name_that_is_no_plain_folder_name_is_refused(name):
    with pytest.raises(ConfigError, match="name: must be a plain folder name"):
        load_config("ci", [f"name={json.dumps(name)}"])


@pytest.mark.parametrize("jobs", ["0", "-3", "two"])
def test_jobs_below_one_is_refused_by_argparse(tmp_path, jobs):
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", "ci", "-o", f"results_dir={tmp_path}", "--jobs",
                        jobs], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 2 and "--jobs: expected a whole number >= 1" in r.stderr
    assert not (tmp_path / "ci").exists()


def _pool_world(problems_of):
    from soar_lite.tasks import register_task
    from soar_lite.tasks.tiny import TinyTask, TinyWorld

    class PoolWorld(TinyTask):
        def problems(self, pool):
            return problems_of(self.world) if pool == "hard-candidates" else super().problems(pool)

    name = f"pool_world_{id(problems_of)}"
    register_task(name, lambda task_cfg: PoolWorld(TinyWorld(), task_cfg.student_max_new_tokens,
                                                   task_cfg.teacher_max_new_tokens))
    return name


def test_one_question_with_two_answers_is_refused_before_the_probe(tmp_path):
    from soar_lite.tasks.base import DataError, Problem

    def pool(w):
        first = w.problem(*w.hard_candidates[0])
        return [first, Problem(id="copy", question=first.question, answer=first.answer + "9")]

    cfg = load_config("ci", [f"results_dir={tmp_path}", f"task.name={_pool_world(pool)}"])
    with pytest.raises(DataError, match="ask the same question with different answers"):
        probe.check_inputs(cfg)


def test_a_pool_of_copies_of_one_question_stops_the_probe_keeping_its_counts(tmp_path):
    import dataclasses

    from soar_lite.tasks.base import DataError

    def pool(w):
        first = w.problem(*w.hard_candidates[0])
        return [dataclasses.replace(first, id=f"c{i}") for i in range(8)]

    cfg = load_config("ci", [f"results_dir={tmp_path}", f"task.name={_pool_world(pool)}", "probe.level_pool=''"])
    with pytest.raises(DataError, match=r"1 distinct questions\) failed both batches, leaving hard-train"):
        probe.run(cfg, log=lambda m: None)
    assert cfg.layout.first_batch_counts.exists() and not cfg.layout.hard_train.exists()


# ---- issue 33, item 3: a world without a required hook is refused when it is built --------------------------------
def test_a_world_missing_required_hooks_is_one_line_naming_each(tmp_path):
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "hookless.py").write_text(
        "from soar_lite.tasks import Task\n\nclass Half(Task):\n    def student_prompt(self, q):\n        return q\n\n"
        "    def problems(self, pool):\n        return []\n\ndef make(cfg):\n    return Half()\n")
    params = tmp_path / "params.yaml"
    params.write_text("extends: ci\ntask:\n  name: hookless:make\n  module_path: w\n")
    with pytest.raises(ConfigError) as e:
        load_config(str(params))
    assert ("task.name: world 'hookless:make': Half does not define the required hooks teacher_prompt, parse_teacher, "
            "extract_answer, is_correct, student_reward") in str(e.value)
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", str(params), "-o", f"results_dir={tmp_path}"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "parse_teacher" in r.stderr


# ---- issue 33, item 4: model.path beside the params file; the missing-model message -------------------------------
def test_a_model_folder_beside_the_params_file_is_found_from_any_directory(tmp_path, monkeypatch):
    from soar_lite.tasks.tiny import TINY_MODEL_DIR

    proj = tmp_path / "proj"
    proj.mkdir()
    shutil.copytree(TINY_MODEL_DIR, proj / "my_model")
    (proj / "params.yaml").write_text("extends: ci\nmodel:\n  path: my_model\n")
    keys = []
    for cwd in (tmp_path, proj):
        monkeypatch.chdir(cwd)
        cfg = load_config(str(proj / "params.yaml"))
        assert (Path(cfg.model.path) / "config.json").is_file()
        keys.append(resume_key(cfg)["model.path"])
    assert keys[0] == keys[1] == os.path.realpath(proj / "my_model")


@pytest.mark.parametrize("path, says", [
    ("./nowhere/model", "no such folder"), ("../x/y/z", "no such folder"),
    ("someorg/some-model", "not in the local Hugging Face cache, and hub downloads are off: pass --online"),
])
def test_a_missing_model_names_the_path_it_tried(tmp_path, path, says):
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", "ci", "-o", f"results_dir={tmp_path}", "-o",
                        f"model.path={path}"], capture_output=True, text=True, cwd=tmp_path, timeout=120,
                       env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert r.returncode == 2 and says in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    if says == "no such folder":
        assert str((tmp_path / path).resolve()) in r.stderr and "--online" not in r.stderr


# ---- issue 33, item 1: a constant series is "constant", never "rho +nan" -------------------------------------------
@pytest.mark.parametrize("rho, p, n, says", [
    (float("nan"), float("nan"), 2, "cannot be tested for a trend (fewer than 3 steps)"),
    (float("nan"), float("nan"), 6, "is constant over 6 outer steps (no trend to test)"),
    (0.9, 0.01, 6, "rises over 6 outer steps (Spearman rho +0.90, p = 0.01)"),
    (-0.9, 0.01, 6, "falls over 6 outer steps"), (0.2, 0.5, 6, "shows no trend over 6 outer steps"),
])
def test_trend_words(rho, p, n, says):
    assert meta_train.trend_words(rho, p, n).startswith(says)


@pytest.mark.parametrize("x, lo, hi, ok", [
    (1, float("-inf"), float("inf"), True), (0.5, 0, 1, True), (1.5, 0, 1, False), (0, 1, float("inf"), False),
    (True, float("-inf"), float("inf"), False), (float("nan"), float("-inf"), float("inf"), False),
    (float("inf"), float("-inf"), float("inf"), False), ("1", float("-inf"), float("inf"), False),
    (None, float("-inf"), float("inf"), False)])
def test_a_saved_number_is_finite_never_a_bool_and_in_range(x, lo, hi, ok):
    """The one check behind every numeric field a saved student (evaluate, analyze) is read back by."""
    from soar_lite.stages.common import is_number

    assert is_number(x, lo, hi) is ok
