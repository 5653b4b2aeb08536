"""stages/: the paper and Colab params files validate, and their first stage runs on a 3-problem slice with the
tiny model substituted through overrides, so the configs cannot rot on a CPU-only machine; the world report
refuses worlds without one; the GPU smoke script runs in its CPU mode; local workers and Ray actors give the tables of
one process."""

import json

import pytest

from soar_lite.config import load_config
from soar_lite.stages import probe

from conftest import REPO
GPU_PARAMS = sorted(p for p in (REPO / "params").glob("*.yaml") if p.stem.startswith(("paper", "colab")))


def test_gpu_params_exist():
    assert {p.stem for p in GPU_PARAMS} >= {"paper-math", "paper-harp", "colab-small"}


def test_paper_params_are_the_papers_table3():
    cfg = load_config(REPO / "params" / "paper-math.yaml")
    m = cfg.meta
    assert (m.g, m.n, m.r, m.M, m.tau, m.ma_window, m.outer_steps, m.inner_steps) == (4, 64, 4, 64, 0.01, 3, 200, 10)
    assert (m.student.kl_coef, m.student.batch_questions, m.student.group_size) == (0.001, 8, 32)
    # LoRA at 10x the paper's full-fine-tuning lr 1e-5, a deviation the params file names (REVIEW P1)
    assert m.student.lr == m.teacher.lr == cfg.evaluate.student.lr == 1e-4
    assert any("LoRA learning rate 1e-4" in d for d in cfg.deviations)
    assert (cfg.probe.samples, cfg.task.student_max_new_tokens, cfg.model.path) == (128, 1024, "meta-llama/Llama-3.2-3B-Instruct")


@pytest.mark.parametrize("path", GPU_PARAMS, ids=[p.stem for p in GPU_PARAMS])
def test_first_stage_runs_on_a_slice_with_the_tiny_model(path, tmp_path):
    cfg = load_config(path, [f"results_dir={tmp_path}", "model.path=tiny", "model.backend=hf", "model.dtype=float32",
                             "probe.limit=3", "probe.samples=2", "probe.confirm_samples=2", "probe.level_pool=''",
                             "task.student_max_new_tokens=4"])
    res = probe.run(cfg, log=lambda m: None)
    assert res.summary["n_pool"] == 3
    assert (tmp_path / path.stem / "tables" / "hard_sets.csv").exists()


@pytest.mark.whole_run(seconds=73)
def test_gpu_smoke_script_runs_on_cpu(tmp_path):
    """scripts/gpu_smoke.py cannot rot unseen: its CPU mode pretrains a small 'big' model, runs probe -> one outer
    step -> a short evaluation on the hf backend, and prints the extrapolated cost for every params file."""
    import json
    import os
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_smoke.py"), "--allow-cpu", "--models", "big",
                        "--big", "64,2,2,150", "--out", str(tmp_path)], capture_output=True, text=True, timeout=600,
                       cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    runs = json.loads((tmp_path / "summary.json").read_text())["models"]["big"]
    assert set(runs["hf"]["times"]) == {"probe", "meta_step", "evaluate"}
    assert runs["hf"]["gen_tok_s"] > 0 and runs["hf"]["train_tok_s"] > 0
    assert set(runs["extrapolated_cost"]) == {"paper-math", "paper-harp", "colab-small"}
    assert "backend: hf" in r.stdout


def test_tiny_world_report_refuses_a_math_task_with_a_clear_error(tmp_path):
    from soar_lite.stages import tiny_world

    cfg = load_config(REPO / "params" / "colab-small.yaml", [f"results_dir={tmp_path}"])
    with pytest.raises(ValueError, match="worlds with a report only.*task.name=math"):
        tiny_world.run(cfg)
    assert not (tmp_path / "colab-small").exists()  # nothing written


@pytest.mark.whole_run(seconds=120)
@pytest.mark.xdist_group("ray")  # one local Ray instance at a time (tests/conftest.py)
def test_local_workers_and_ray_actors_give_the_tables_of_one_process(tmp_path):
    """executor.workers = 2 (spawned local processes) and, where Ray is installed, executor.kind = ray with 2 actors:
    meta-training (2 teacher seeds x grounded/intrinsic; the local workers share every run's inner-loop students) and
    the evaluation students give the metrics, promotions, PQ, end diagnostics, pass@k, curves and comparisons of
    one process. One probe, copied into each run (the probe is not what is compared)."""
    import importlib.util
    import json
    import shutil

    from soar_lite import executor
    from soar_lite.stages import evaluate, meta_train, probe

    variants = {"one": ["executor.workers=1"], "local-2": ["executor.workers=2"]}
    if importlib.util.find_spec("ray") is not None:
        variants["ray-2"] = ["executor.kind=ray", "executor.workers=2"]
    quiet = lambda *a: None  # noqa: E731
    strip = lambda r: {k: v for k, v in r.items() if k not in ("seconds", "profile")}  # noqa: E731
    out, probed = {}, None
    try:
        for name, overrides in variants.items():
            cfg = load_config("ci", [f"results_dir={tmp_path / name}", "meta.runs=2", *overrides])
            if probed is None:
                probe.run(cfg, log=quiet)
                probed = cfg.run_dir / "probe"
            else:
                shutil.copytree(probed, cfg.run_dir / "probe")
            meta_train.run(cfg, log=quiet)
            evaluate.run(cfg, log=quiet)
            run = cfg.run_dir
            metas = sorted(run.glob("meta*"))
            out[name] = {
                "metrics": {d.name: [strip(json.loads(l)) for l in (d / "metrics.jsonl").read_text().splitlines()]
                            for d in metas},
                "files": {(d.name, f): (d / f).read_text() for d in metas
                          for f in ("promotions.json", "pq.json", "diagnostics.json") if (d / f).exists()},
                "tables": {t: (run / "tables" / f"{t}.csv").read_text() for t in ("pass_at_k", "curves", "comparisons")},
            }
    finally:
        executor.shutdown()
    assert len(out["one"]["metrics"]) == 4 and out["one"]["tables"]["pass_at_k"].count("\n") > 10
    assert {f for _, f in out["one"]["files"]} == {"promotions.json", "pq.json", "diagnostics.json"}
    for name in variants:
        assert out[name] == out["one"], name


def test_identical_teachers_give_identical_students(tmp_path):
    """Common random numbers: a 'trained' grounded teacher that is the untrained model gives student s exactly the
    questions, samples and curve of Base-T (a synthetic question is keyed by its position, not by its method)."""
    from soar_lite.models import save_snapshot
    from soar_lite.stages import evaluate, meta_train, probe
    from soar_lite.stages.common import load

    cfg = load_config("ci", [f"results_dir={tmp_path}", "meta.teachers=[grounded]", "evaluate.steps=4",
                             "evaluate.n_questions=32", "evaluate.student.batch_questions=16",
                             "evaluate.student.group_size=8"])
    probe.run(cfg, log=lambda *a: None)
    policy, _ = load(cfg)
    from soar_lite.models import snapshot

    path = meta_train.trained_teacher_path(cfg, "grounded", 0)
    path.parent.mkdir(parents=True)
    save_snapshot(snapshot(policy), path)
    base_t = evaluate.student_job(cfg, "base-t", 0)
    grounded_t = evaluate.student_job(cfg, "grounded-t", 0)
    assert base_t["n_questions"] == grounded_t["n_questions"] > 0
    cols = ["step", "k", "pass_at_k"]
    assert base_t["curve"][cols].equals(grounded_t["curve"][cols])
    assert [r["pass_at_k"] for r in base_t["finals"]] == [r["pass_at_k"] for r in grounded_t["finals"]]
    assert base_t["stop"]["train_reward_last"] == grounded_t["stop"]["train_reward_last"]


# the ci world with evaluation arms big enough to train: one grounded teacher, 4 steps, 32 questions, 16 x 8 batches
ARMS = ["meta.teachers=[grounded]", "evaluate.steps=4", "evaluate.eval_every=2", "evaluate.mode=mixed",
        "evaluate.n_questions=32", "evaluate.student.batch_questions=16", "evaluate.student.group_size=8"]


@pytest.mark.whole_run(seconds=30)
def test_the_paper_table_arms_run_as_their_definitions_say(tmp_path):
    """Issue 26's arms on the ci world: Inference with Grounded-T samples the teacher as the solver (a 'trained'
    teacher equal to the untrained model gives exactly the base-model row), a method named with its run's own mode
    is that method (the same curve), the other mode trains differently on the same questions, and Hard-Only extended
    trains extended_steps_factor times as long."""
    from soar_lite.models import save_snapshot, snapshot
    from soar_lite.stages import evaluate, meta_train, probe
    from soar_lite.stages.common import load

    cfg = load_config("ci", [f"results_dir={tmp_path}", *ARMS, "evaluate.curriculum_steps=2",
                             "evaluate.extended_steps_factor=2"])
    probe.run(cfg, log=lambda *a: None)
    policy, _ = load(cfg)
    path = meta_train.trained_teacher_path(cfg, "grounded", 0)
    path.parent.mkdir(parents=True)
    save_snapshot(snapshot(policy), path)
    finals = lambda job: [r["pass_at_k"] for r in job["finals"]]  # noqa: E731
    assert finals(evaluate.student_job(cfg, "grounded-t-inference", 0)) == \
        finals(evaluate.student_job(cfg, "base-model", 0))
    cols = ["step", "k", "pass_at_k"]
    plain, mixed = evaluate.student_job(cfg, "base-t", 0), evaluate.student_job(cfg, "base-t@mixed", 0)
    assert plain["curve"][cols].equals(mixed["curve"][cols]) and plain["n_questions"] == mixed["n_questions"] > 0
    curriculum = evaluate.student_job(cfg, "base-t@curriculum", 0)
    assert curriculum["n_questions"] == plain["n_questions"]
    assert curriculum["stop"]["train_reward_last"] != plain["stop"]["train_reward_last"]
    extended = evaluate.student_job(cfg, "hard-only-extended", 0)
    assert extended["curve"].step.max() == 8 == 2 * evaluate.student_job(cfg, "hard-only", 0)["curve"].step.max()
    assert evaluate.student_job(cfg, "base-t#8", 0)["n_questions"] == 8  # Fig. 14/16: |X| per arm
    assert evaluate.student_job(cfg, "curated#8", 0)["n_questions"] == 8
    assert evaluate.students(cfg.evaluate, "grounded-t-inference") == cfg.evaluate.base_model_seeds
    assert evaluate.students(cfg.evaluate, "base-t@curriculum") == evaluate.students(cfg.evaluate, "base-t")


@pytest.mark.parametrize("rejected, stopped, expected", [
    ([0, 1, 0, 2], {}, "stable"),
    ([0, 300, 400, 3], {}, "collapsed at steps 1-2 (format rejections up to 0.61 of a step's samples), recovered "
                           "(last step 0.01)"),
    ([0, 0, 0, 300], {}, "collapsed at step 3 (format rejections up to 0.54 of a step's samples), not recovered "
                         "(last step 0.54)"),
    ([0, 0], {"step": 2, "format_acceptance": 0.0, "samples": 256, "reason": "r"},
     "stopped at outer step 2 (format acceptance 0.000 of 256 samples)"),
])
def test_a_teachers_status_names_a_collapse_and_whether_it_recovered(rejected, stopped, expected, tmp_path):
    import pandas as pd

    from soar_lite.stages.meta_train import MetaRun

    m = pd.DataFrame({"step": range(len(rejected)), "rejected": rejected, "accepted": [256] * len(rejected)})
    run = MetaRun(teacher="grounded", run=0, metrics=m, pq=[], promotions=[], initial_hard_train_acc=None,
                  initial_hard_train_score=None, tau=None, tau_null=[], tau_null_summary={}, end_diagnostics={},
                  dir=tmp_path, stopped=stopped)
    assert run.status() == expected


@pytest.mark.whole_run(seconds=13)
def test_transfer_evaluates_another_runs_teachers_at_a_fixed_step(tmp_path):
    """Table 6: `evaluate.teacher_run` takes the teachers from another run directory (here one with the same hard
    set, so its Grounded-T student equals the source run's own), and `evaluate.fixed_step` reports pass@k at that
    step; a missing source run is a skip naming the checkpoint it looked for."""
    from soar_lite.stages import evaluate, meta_train, probe

    common = [f"results_dir={tmp_path}", "meta.teachers=[grounded]", "evaluate.steps=4", "evaluate.eval_every=2",
              "evaluate.n_questions=16", "evaluate.student.batch_questions=8", "evaluate.student.group_size=4"]
    src = load_config("ci", common + ["name=src"])
    probe.run(src, log=lambda *a: None)
    meta_train.run(src, log=lambda *a: None)
    dst = load_config("ci", common + ["name=dst", "evaluate.teacher_run=src", "evaluate.fixed_step=2"])
    probe.run(dst, log=lambda *a: None)
    own, moved = evaluate.student_job(src, "grounded-t", 0), evaluate.student_job(dst, "grounded-t", 0)
    cols = ["step", "k", "pass_at_k"]
    assert moved["n_questions"] == own["n_questions"] > 0 and moved["curve"][cols].equals(own["curve"][cols])
    at_2 = moved["curve"][moved["curve"].step == 2].set_index("k").pass_at_k
    assert moved["stop"]["stop_step"] == 2
    assert [r["pass_at_k"] for r in moved["finals"]] == [float(at_2[r["k"]]) for r in moved["finals"]]
    gone = load_config("ci", common + ["name=dst", "evaluate.teacher_run=nowhere"])
    why = evaluate.missing_input(gone, "grounded-t", {})
    assert why.startswith("no trained teacher at") and "nowhere" in why
    with pytest.raises(Exception, match="evaluate.fixed_step: must be an evaluated step"):
        load_config("ci", common + ["evaluate.fixed_step=3"])
    with pytest.raises(Exception, match="evaluate.teacher_run: the name of another run"):
        load_config("ci", common + ["evaluate.teacher_run=../x"])


@pytest.mark.whole_run(seconds=9)
def test_a_resumed_students_seconds_are_its_sittings_summed(tmp_path, monkeypatch):
    """A student resumed from its saved state (a killed render) reports its wall time over every sitting: the
    seconds its state recorded plus this sitting's, in its saved result and in the evaluate summary's timings."""
    from soar_lite.stages import evaluate, probe

    cfg = load_config("ci", [f"results_dir={tmp_path}", "evaluate.methods=[hard-only]", "evaluate.seeds=1"])
    probe.run(cfg, log=lambda *a: None)
    partial = cfg.layout.evaluate_student_partial("hard-only", 0)
    partial.parent.mkdir(parents=True, exist_ok=True)
    partial.write_bytes(b"a state from an earlier sitting")  # what the check before dispatch reads (patched below)
    monkeypatch.setattr(evaluate, "load_partial",
                        lambda path, key, log=None: {"done": 4, "seconds": 1000.0} if path == partial else None)
    lines = []
    res = evaluate.run(cfg, log=lines.append)
    assert any(line.startswith("hard-only student 0: resumes at RL step 4") for line in lines), lines
    saved = json.loads(cfg.layout.evaluate_student("hard-only", 0).read_text())["result"]["seconds"]
    assert 1000.0 < saved < 1000.0 + 3600 and res.timings["hard-only"] == round(saved, 1)
    assert json.loads(cfg.layout.summary("evaluate").read_text())["timings_s"]["hard-only"] == round(saved, 1)
    assert not partial.exists()  # the finished result is kept: its state is not


@pytest.mark.whole_run(seconds=15)
def test_a_rerendered_evaluation_trains_only_the_students_it_lacks(tmp_path, monkeypatch):
    """Each finished student is saved with the key of what it depends on: a second render (a killed one resumed, in
    any session) reads them back and writes byte-identical tables without training anyone; a student whose saved
    file is gone, or whose inputs changed (another teacher checkpoint), is trained again, and only that one."""
    from soar_lite.stages import evaluate, meta_train, probe

    cfg = load_config("ci", [f"results_dir={tmp_path}", "meta.teachers=[grounded]",
                             "evaluate.methods=[base-model, hard-only, grounded-t]"])
    probe.run(cfg, log=lambda *a: None)
    meta_train.run(cfg, log=lambda *a: None)
    evaluate.run(cfg, log=lambda *a: None)
    tables = {t: cfg.layout.table(t).read_bytes() for t in ("pass_at_k", "curves", "comparisons")}
    real_job, trained = evaluate.student_job, []

    def counting(cfg_, method, s, *partial):
        trained.append((method, s))
        return real_job(cfg_, method, s, *partial)

    monkeypatch.setattr(evaluate, "student_job", counting)
    lines = []
    evaluate.run(cfg, log=lines.append)
    assert trained == [] and any("found finished" in line for line in lines)
    assert {t: cfg.layout.table(t).read_bytes() for t in tables} == tables
    cfg.layout.evaluate_student("hard-only", 0).unlink()
    stale = cfg.layout.evaluate_student_partial("hard-only", 0)  # a killed student's state, made for
    stale.write_bytes(b"not a student state")  # ... other inputs or damaged: named, deleted, the student starts over
    cfg.layout.evaluate_student("base-model", 0).write_text('["not", "a result"]')  # damaged: trained again
    ckpt = meta_train.trained_teacher_path(cfg, "grounded", 0)
    from soar_lite.models import load_snapshot, save_snapshot

    teacher = load_snapshot(ckpt)
    name = sorted(teacher)[0]
    teacher[name] = teacher[name] + 1e-3  # another teacher (other tensors): its students' key changes
    save_snapshot(teacher, ckpt)
    students = evaluate.students(cfg.evaluate, "grounded-t")
    lines = []
    evaluate.run(cfg, log=lines.append)
    assert any(line.startswith("hard-only-s0.partial.pt: damaged (") for line in lines), lines
    assert not list(stale.parent.glob("*.partial.pt"))  # a finished student's training state is not kept
    assert sorted(trained) == sorted([("base-model", 0), ("hard-only", 0)] + [("grounded-t", s) for s in range(students)
                                                                             if s % cfg.meta.runs == 0])
    trained.clear()  # one more seed per method: only the new students train
    more = load_config("ci", [f"results_dir={tmp_path}", "meta.teachers=[grounded]",
                              "evaluate.methods=[base-model, hard-only, grounded-t]",
                              f"evaluate.seeds={cfg.evaluate.seeds + 1}", f"evaluate.other_seeds={cfg.evaluate.seeds + 1}",
                              f"evaluate.base_model_seeds={cfg.evaluate.base_model_seeds + 1}"])
    evaluate.run(more, log=lambda *a: None)
    assert sorted(trained) == sorted([("base-model", cfg.evaluate.base_model_seeds), ("hard-only", cfg.evaluate.seeds),
                                      ("grounded-t", students)])


@pytest.mark.whole_run(seconds=11)
def test_serl_trains_on_its_own_unlabelled_filtered_questions(tmp_path):
    """The SeRL arm on the ci world: the questions are the untrained model's own, unlabelled (majority-vote reward),
    unique, each with an agreement share inside the band; the student is reported at serl_step; a band nothing
    passes stops in one line naming the keys."""
    from soar_lite.models import snapshot
    from soar_lite.serl import agreement_share
    from soar_lite.sampling import sample
    from soar_lite.stages import evaluate, probe
    from soar_lite.stages.common import load

    cfg = load_config("ci", [f"results_dir={tmp_path}", *ARMS, "evaluate.serl_step=2",
                             "evaluate.methods=[hard-only, serl]"])
    probe.run(cfg, log=lambda *a: None)
    policy, task = load(cfg)
    qsets = evaluate.QuestionSets(cfg, policy, task, snapshot(policy))
    items = qsets.items("serl", 0)
    questions = [it.question for it in items]
    assert 0 < len(items) <= 32 and len(set(questions)) == len(questions)
    assert all(it.reference is None for it in items)
    texts, _ = sample(policy, [task.student_prompt(q) for q in questions], [f"check{i}" for i in range(len(items))],
                      64, 1.0, task.student_max_new_tokens, 1, 256)
    shares = [agreement_share([task.extract_answer(t) for t in g]) for g in texts]
    # re-measured on fresh samples: inside the band up to noise (a share picked on few samples regresses to its mean)
    assert 0 < min(shares) and max(shares) < 1
    assert cfg.evaluate.serl_min_agreement - 0.15 < sum(shares) / len(shares) < cfg.evaluate.serl_max_agreement + 0.15
    job = evaluate.student_job(cfg, "serl", 0)
    assert job["stop"]["stop_step"] == 2 and job["n_questions"] == len(items)
    none = load_config("ci", [f"results_dir={tmp_path}", "evaluate.serl_min_agreement=0.51",
                              "evaluate.serl_max_agreement=0.52", "evaluate.n_questions=4"])  # no k/16 inside
    with pytest.raises(ValueError, match=r"serl: none of 16 self-instructed questions .*serl_min_agreement"):
        evaluate.QuestionSets(none, policy, task, snapshot(policy)).items("serl", 0)


def test_a_two_turn_teacher_meta_trains_and_its_questions_are_evaluated(tmp_path):
    """meta.teacher_turns = 2 (Table 8) through the whole loop on the ci world: the teacher updates on two rows a
    pair, the collapse guard probes two-turn rollouts, and Grounded-T samples the trained teacher in two turns."""
    import json

    from soar_lite.stages import evaluate, meta_train, probe

    cfg = load_config("ci", [f"results_dir={tmp_path}", "meta.teachers=[grounded]", "meta.g=2", "meta.n=4",
                             "meta.r=1", "meta.inner_steps=1", "meta.outer_steps=2", "meta.teacher_turns=2",
                             "evaluate.steps=2", "evaluate.eval_every=1", "evaluate.n_questions=8"])
    probe.run(cfg, log=lambda *a: None)
    meta_train.run(cfg, log=lambda *a: None)
    rows = [json.loads(line) for line in cfg.layout.meta("grounded", 0).metrics.read_text().splitlines()]
    assert [r["step"] for r in rows if "step" in r][-1] == 1 and all(r["guard"]["attempts"] for r in rows if "guard" in r)
    assert evaluate.student_job(cfg, "grounded-t", 0)["n_questions"] == 8


def test_a_task_without_a_two_turn_teacher_is_refused_in_one_line(monkeypatch):
    from soar_lite import cli, tasks
    from soar_lite.rundir import RunDirError
    from soar_lite.tasks.base import Task

    monkeypatch.setattr(tasks, "make_task", lambda *a, **k: Task())
    cfg = load_config("ci", ["meta.teacher_turns=2"])
    with pytest.raises(RunDirError, match=r"meta.teacher_turns: 2 needs a task with a two-turn teacher"):
        cli.check_teacher_turns(cfg)
    cli.check_teacher_turns(load_config("ci"))  # one turn: any task
