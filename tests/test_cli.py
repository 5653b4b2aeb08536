"""cli.py: stage waves, and end to end: `soar-lite run params/ci.yaml` executes every notebook with papermill and
writes its outputs; the wheel carries what a pip install needs."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO


def _errors(nb_path: Path) -> list[str]:
    nb = json.loads(nb_path.read_text())
    return [o.get("ename", "") for c in nb["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]


@pytest.mark.parametrize("stages, expected", [
    (["probe", "tiny_world", "meta_train", "evaluate", "analyze"],
     [["probe"], ["tiny_world", "meta_train"], ["evaluate", "analyze"]]),
    (["probe", "meta_train", "evaluate", "analyze"], [["probe"], ["meta_train"], ["evaluate", "analyze"]]),
    (["evaluate", "analyze"], [["evaluate", "analyze"]]),  # inputs from an earlier run
    (["analyze", "meta_train"], [["meta_train"], ["analyze"]]),
    (["probe", "evaluate"], [["probe"], ["evaluate"]]),  # no meta-training (another run's teachers): after the probe
])
def test_stage_waves(stages, expected):
    from soar_lite.cli import waves

    assert waves(stages) == expected


@pytest.mark.whole_run(seconds=22)
def test_parallel_stage_failure_names_the_stage_and_its_log(tmp_path):
    probe_dir = tmp_path / "ci" / "probe"  # probe outputs that exist (the run is not refused) but cannot be read
    probe_dir.mkdir(parents=True)
    for name in ("hard_train.json", "hard_test.json"):
        (probe_dir / name).write_text("{")
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", str(REPO / "params" / "ci.yaml"), "--jobs", "2",
                        "--only", "evaluate", "--only", "analyze", "-o", f"results_dir={tmp_path}"],
                       capture_output=True, text=True, timeout=600, cwd=REPO)
    assert r.returncode == 1
    assert "stage evaluate failed" in r.stderr and str(tmp_path / "ci" / "logs" / "evaluate.log") in r.stderr


@pytest.mark.whole_run(seconds=88)
def test_papermill_end_to_end_on_ci_params(tmp_path):
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", str(REPO / "params" / "ci.yaml"), "--jobs", "2",
                        "--progress-every", "1", "-o", f"results_dir={tmp_path}"], capture_output=True, text=True,
                       timeout=1200, cwd=REPO)
    assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
    run = tmp_path / "ci"
    # progress a person can see (issue 14, point 12): per stage, cells done / total with the elapsed minutes
    assert re.search(r"^\[meta_train\] \d+\.\d min, cell \d+/\d+", r.stdout, re.M), r.stdout
    logs = "".join(p.read_text() for p in (run / "logs").glob("*.log"))
    assert "without encryption" not in logs + r.stderr and "Unable to parse line" not in logs + r.stderr
    assert not list(run.glob("*.partial.ipynb"))  # every stage's report moved into place
    assert sorted(p.stem for p in (run / "logs").glob("*.log")) == sorted(
        ["probe", "tiny_world", "meta_train", "evaluate", "analyze"])
    for nb in ["01_probe", "02_tiny_world", "03_meta_train", "04_evaluate", "05_analyze"]:
        assert (run / f"{nb}.ipynb").exists() and (run / f"{nb}.html").exists(), nb
        assert _errors(run / f"{nb}.ipynb") == [], nb
    hs = pd.read_csv(run / "tables" / "hard_sets.csv")
    assert list(hs.columns) == ["pool", "n_pool", "n_fail", "n_train", "n_test"]
    assert hs.n_fail[0] == hs.n_train[0] + hs.n_test[0] > 0
    pk = pd.read_csv(run / "tables" / "pass_at_k.csv")
    assert list(pk.columns) == ["method", "seed", "k", "pass_at_k"]
    assert {"base-model", "hard-only", "soar-pq", "soar-ps", "grounded-t", "base-t", "intrinsic-t", "curated"} <= set(pk.method)
    ql = pd.read_csv(run / "tables" / "question_labels.csv")
    assert {"set", "n", "well_posed_share", "correct_share"} <= set(ql.columns)
    assert set(ql.set) == {"base-t", "intrinsic-t", "grounded-t", "pq"}
    assert list(pd.read_csv(run / "tables" / "vendi.csv").columns) == ["set", "vendi_mean", "vendi_sd"]
    assert list(pd.read_csv(run / "tables" / "world_check.csv").columns) == ["arm", "seed", "k", "pass_at_k"]
    assert list(pd.read_csv(run / "tables" / "base_teacher_rewards.csv").columns)[:2] == ["dataset", "delta"]
    cmp = pd.read_csv(run / "tables" / "comparisons.csv")
    assert list(cmp.columns)[:14] == ["comparison", "k", "difference", "ci_low", "ci_high", "p_value", "n_a", "n_b",
                                      "unit", "k_a", "k_b", "verdict", "rests_on", "scale"]  # the unit of each claim
    assert set(cmp.scale) == {"toy"} and cmp.verdict.notna().all()
    assert {"soar-pq vs hard-only", "grounded-t vs base-t"} <= set(cmp.comparison)
    levels = pd.read_csv(run / "tables" / "teacher_level.csv")  # the claims about teachers, across teachers
    assert set(levels.unit) == {"teacher"} and set(levels.measure) == {"useful_share"}
    assert "grounded teachers vs the untrained teacher" in set(levels.comparison)
    assert "grounded teachers vs the untrained teacher (useful_share at the end, across teachers)" in \
        (run / "03_meta_train.ipynb").read_text()
    metrics = [json.loads(l) for l in (run / "meta" / "metrics.jsonl").read_text().splitlines()]
    assert {"step", "reward_mean", "reward_ma", "promoted", "baseline_score", "inner_steps", "rejected", "seconds"} <= set(metrics[0])
    assert len(list((run / "figures").glob("*.png"))) >= 10
    # provenance (issue 23): each report's commit, params (relative) and hash, wall time; no machine path in any
    # report; each HTML page titled; the run's index page first
    from soar_lite.stages import STAGES

    for stage, st in STAGES.items():
        prov = json.loads((run / "provenance" / f"{stage}.json").read_text())
        assert prov["params"] == "params/ci.yaml" and len(prov["params_sha256"]) == 12 and prov["seconds"] > 0
        assert prov["commit"] and prov["finished"]
        # one part (issue 38: a render in several sittings lists each), finished, from the same commit
        assert [(q["commit"], "finished" in q) for q in prov["parts"]] == [(prov["commit"], True)], stage
        assert prov["all_parts"]["parts"] == 1 and prov["all_parts"]["paused_seconds"] == 0
        text = (run / st.notebook).read_text() + (run / st.notebook.replace(".ipynb", ".html")).read_text()
        assert str(REPO) not in text, stage
        assert f"<title>{st.title}</title>" in (run / st.notebook.replace(".ipynb", ".html")).read_text()
        assert f"report {stage}: rendered from commit {prov['commit']}" in (run / st.notebook).read_text()
    # the HTML a reader reads (issue 37, item 5): no set-up code, no papermill parameters, no progress lines; the
    # .ipynb keeps them
    for nb in ["01_probe", "03_meta_train", "04_evaluate", "05_analyze"]:
        html, ipynb = (run / f"{nb}.html").read_text(), (run / f"{nb}.ipynb").read_text()
        assert "notebook_setup(" in ipynb and "notebook_setup(" not in html and "_injected" not in html, nb
        assert "rendered from commit" in html, nb  # the set-up cell's banner stays
        assert not re.search(r"\[\d+/\d+\] [\w@#-]+ student \d+:", html), nb  # evaluate's per-student lines
        assert not re.search(r"step +\d+ +R=[+-]", html), nb  # meta-training's per-step lines
    assert re.search(r"step +\d+ +R=[+-]", (run / "03_meta_train.ipynb").read_text())
    index = (run / "index.md").read_text()
    assert (run / "index.html").exists() and "| Tables 4-5 | pass@k of every method (v3: with Inference with Grounded-T" in index
    assert "01_probe.html" in index and "## Findings" in index and str(REPO) not in index
    # the index opens with the verdicts (issue 37, item 3), before the reports table
    assert index.index("## Verdicts") < index.index("## Reports") and "| Finding 1: SOAR-PQ beats Hard-Only |" in index
    assert "| The teacher learns: its questions beat the untrained teacher's |" in index
    assert "[← the run's index" in (run / "04_evaluate.ipynb").read_text()  # each report links back
    # progress lines with work done in the stage's unit
    assert re.search(r"^\[meta_train\] \d+\.\d min, \d+/\d+ outer steps", r.stdout, re.M), r.stdout
    # a --resume of the whole run (a render in parts) runs no stage that finished from this commit with these params
    prov = json.loads((run / "provenance" / "probe.json").read_text())
    if prov["commit"] and not prov["uncommitted_changes"]:  # a clean checkout, as in CI
        again = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", str(REPO / "params" / "ci.yaml"), "--jobs",
                                "2", "--resume", "-o", f"results_dir={tmp_path}"], capture_output=True, text=True,
                               timeout=300, cwd=REPO)
        assert again.returncode == 0 and again.stdout.count("not run again") == 5, again.stdout + again.stderr
        assert "every stage had finished" in again.stdout


def test_notebook_runs_outside_the_repository_with_a_shipped_params_name(tmp_path):
    """As on Colab: the kernel's working directory is not this checkout and params_path is a bare name; the
    set-up cell says which backend runs."""
    import papermill as pm

    out = tmp_path / "01_probe.ipynb"
    pm.execute_notebook(str(REPO / "notebooks" / "01_probe.ipynb"), str(out), kernel_name="python3",
                        parameters={"params_path": "ci", "overrides": ["results_dir=results", "probe.level_pool=''"]},
                        cwd=str(tmp_path), progress_bar=False)
    outputs = [o.get("text", "") for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", [])]
    text = "".join("".join(t) if isinstance(t, list) else t for t in outputs)
    assert "[soar_lite] backend: hf" in text
    assert (tmp_path / "results" / "ci" / "tables" / "hard_sets.csv").exists()


def test_the_wheel_carries_params_notebooks_data_and_the_tiny_model(tmp_path):
    """What `pip install` (Colab) gets: the package alone, no checkout. Build the wheel, unpack it, and from an
    empty directory find the stage notebooks, a params file by name, a benchmark and the tiny model."""
    import os
    import zipfile

    wheels = tmp_path / "wheels"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(wheels), str(REPO)],
                           capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-2000:]
    assert "Warning" not in build.stdout + build.stderr  # setuptools builds it without a warning (issue 14, point 12)
    site = tmp_path / "site"
    zipfile.ZipFile(next(wheels.glob("soar_lite-*.whl"))).extractall(site)
    probe = """
from soar_lite.cli import default_notebook_dir
from soar_lite.config import load_config
from soar_lite.tasks.tiny import TINY_MODEL_DIR
from soar_lite.tasks.math_data import load_problems
import soar_lite
assert soar_lite.__file__.startswith(%r), soar_lite.__file__
print(sorted(p.name for p in default_notebook_dir().glob("*.ipynb")))
print(load_config("paper-harp").evaluate.teacher_step, len(load_problems("math-test")), (TINY_MODEL_DIR / "model.safetensors").exists())
""" % str(site)
    empty = tmp_path / "empty"
    empty.mkdir()
    r = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=empty,
                       env={**os.environ, "PYTHONPATH": str(site)})
    assert r.returncode == 0, r.stderr[-2000:]
    notebooks, facts = r.stdout.strip().splitlines()
    assert notebooks == str(sorted(p.name for p in (REPO / "notebooks").glob("*.ipynb")))
    assert facts == "170 5000 True"


def test_notebooks_command_copies_the_shipped_notebooks_and_params(tmp_path):
    from soar_lite.cli import main

    assert main(["notebooks", str(tmp_path / "nb")]) == 0
    assert sorted(p.name for p in (tmp_path / "nb").glob("*.ipynb")) == [  # every shipped notebook (issue 37)
        "00_your_world.ipynb", "01_probe.ipynb", "02_tiny_world.ipynb", "03_meta_train.ipynb", "04_evaluate.ipynb",
        "05_analyze.ipynb", "06_compare.ipynb"]
    assert (tmp_path / "nb" / "params" / "tiny.yaml").exists()
    assert main(["notebooks", str(tmp_path / "nb")]) == 2  # nothing replaced without --force
    assert main(["notebooks", str(tmp_path / "nb"), "--force"]) == 0


def test_run_help_says_what_params_may_be_and_where_output_goes():
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", "--help"], capture_output=True, text=True)
    text = " ".join(r.stdout.split())
    assert "PARAMS is a YAML file" in text and "shipped" in text and "<results_dir>/<name>/NN_<stage>.ipynb" in text
    assert "--online" in text


def test_an_uncached_hub_model_with_downloads_off_is_named(tmp_path):
    """Before: `soar-lite run colab-small` failed deep inside the probe with the hub's 'check your internet
    connection'; the cause is that downloads are off unless asked for."""
    import os

    env = {**os.environ, "HF_HOME": str(tmp_path / "hf")}
    env.pop("SOAR_LITE_ONLINE", None)
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", "colab-small", "-o", f"results_dir={tmp_path / 'r'}"],
                       capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert r.returncode == 2 and "not in the local Hugging Face cache" in r.stderr and "--online" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_stage_progress_reads_a_partial_notebook(tmp_path):
    from soar_lite.cli import stage_progress

    nb = {"cells": [
        {"cell_type": "markdown", "source": "x"},
        {"cell_type": "code", "metadata": {"papermill": {"status": "completed"}},
         "outputs": [{"output_type": "stream", "name": "stdout", "text": ["a\n", "[3/38] hard-only student 0: 644 s\n"]}]},
        {"cell_type": "code", "metadata": {"papermill": {"status": "running"}}, "outputs": []},
        {"cell_type": "code", "metadata": {"papermill": {"status": "pending"}}, "outputs": []},
    ]}
    path = tmp_path / "04_evaluate.partial.ipynb"
    assert stage_progress(path) is None
    path.write_text(json.dumps(nb))
    assert stage_progress(path) == "cell 1/3: [3/38] hard-only student 0: 644 s"


def test_pin_cpu_reaches_the_stage_kernels(tmp_path):
    """`--pin-cpu` (issue 14, point 13): the stage processes import torch with the pinned CPU code paths."""
    import nbformat

    from soar_lite.cli import PIN_CPU_ENV

    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                           "display_name": "Python 3"}})
    params = nbformat.v4.new_code_cell('params_path = ""\noverrides = []\nresume = False')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("import os, torch\nprint(os.environ.get('MKL_CBWR'), "
                                                  "torch.backends.cpu.get_cpu_capability())")]
    (tmp_path / "nbs").mkdir()
    nbformat.write(nb, tmp_path / "nbs" / "01_probe.ipynb")
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", "ci", "--only", "probe", "--pin-cpu", "--notebooks",
                        str(tmp_path / "nbs"), "-o", f"results_dir={tmp_path}"], capture_output=True, text=True,
                       cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert f"{PIN_CPU_ENV['MKL_CBWR']} DEFAULT" in (tmp_path / "ci" / "01_probe.ipynb").read_text()


@pytest.mark.whole_run(seconds=20)
def test_snr_command_prints_the_snr_per_grouping(tmp_path):
    """soar-lite snr on the ci world (after its probe): one line per grouping, with the SNR, its interval and the
    outer steps it implies; the estimate is kept in meta_snr/ and reused. Bad input is one line, exit 2."""
    from soar_lite.config import load_config
    from soar_lite.stages import probe

    cfg = load_config("ci", [f"results_dir={tmp_path}"])
    probe.run(cfg, log=lambda m: None)
    sizes = ["meta.reward_decoding=logprob", "meta.inner_steps=2", "meta.student.group_size=8",
             "meta.student.batch_questions=4", "meta.M=8"]  # rewards that differ between datasets
    cmd = [sys.executable, "-m", "soar_lite.cli", "snr", "ci", "-o", f"results_dir={tmp_path}",
           *[a for o in sizes for a in ("-o", o)], "--draws", "3",
           "--grouping", "2,4,1", "--grouping", "4,2,1"]
    r = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    lines = [line for line in r.stdout.splitlines() if line.strip().startswith("g=")]
    assert len(lines) == 2 and "g=2" in lines[0] and "g=4" in lines[1]
    assert all(re.search(r"SNR -?[0-9.]+(e-?\d+)? \(95% CI", line) and "outer steps" in line for line in lines)
    assert len(list((tmp_path / "ci" / "meta_snr").glob("snr_*.json"))) == 2
    again = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert again.stdout == r.stdout  # read back, not recomputed
    bad = subprocess.run(cmd[:-4] + ["--grouping", "2,x,1"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "G,N,R" in bad.stderr


@pytest.mark.whole_run(seconds=17)
def test_ctrl_c_ends_the_run_in_one_line_and_leaves_no_process(tmp_path):
    """Before: Ctrl-C printed a 42-line traceback and could leave the kernel running. Now: one line saying how to
    resume, exit 130, and every process of the run's session gone."""
    import os
    import signal
    import time

    # the run gets Ctrl-C's default disposition whatever the test inherited: a job started in the background by a
    # non-interactive shell (a CI script run with `&`) ignores SIGINT, and that is inherited down to the run
    proc = subprocess.Popen([sys.executable, "-m", "soar_lite.cli", "run", "ci", "-o", f"results_dir={tmp_path}",
                             "--jobs", "2", "--progress-every", "0"], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    partial = tmp_path / "ci" / "01_probe.partial.ipynb"
    deadline = time.time() + 240
    while time.time() < deadline and not partial.exists() and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    time.sleep(3)  # inside the probe's kernel
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C sends: the whole foreground process group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted" in err and "--resume" in err
    time.sleep(2)
    left = subprocess.run(["ps", "-o", "pid=,args=", "-s", str(proc.pid)], capture_output=True, text=True).stdout.strip()
    assert left == "", left


@pytest.mark.parametrize("overrides, message", [
    (["probe.pool=abc"], "probe.pool 'abc': tiny world has no pool 'abc'"),
    (["probe.pool=''"], "probe.pool is empty"),
    (["probe.level_pool=abc"], "probe.level_pool 'abc'"),
    (["probe.pool=hf:some/dataset:test"], "probe.pool 'hf:some/dataset:test' is a hub dataset and hub downloads are off"),
    (["analyze.embedder=org/not-cached-embedder"], "analyze.embedder 'org/not-cached-embedder' is not a folder or in the "
                                                  "local Hugging Face cache"),
    (["analyze.judge=hf:org/not-cached-judge"], "analyze.judge 'org/not-cached-judge' is not a folder or in the local"),
    (["model.path=EMPTY"], "the folder is empty"),
    (["analyze.judge=abc"], "must be exact, hf:<model path> or openai:<model>"),
])
def test_a_bad_value_is_one_line_before_anything_is_written(tmp_path, overrides, message):
    """Before: raw tracebacks (a ValueError from the tiny world, the hub's ConnectionError deep in a stage, a
    tokenizer error for an empty model folder)."""
    import os

    (tmp_path / "empty").mkdir()
    overrides = [o.replace("EMPTY", str(tmp_path / "empty")) for o in overrides]
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("SOAR_LITE_ONLINE", None)
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", "ci", "-o", f"results_dir={tmp_path / 'r'}",
                        *[a for o in overrides for a in ("-o", o)]], capture_output=True, text=True, cwd=REPO, env=env,
                       timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert message in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.whole_run(seconds=22)
def test_only_twice_starts_one_process(tmp_path):
    """Before: `--only probe --only probe --jobs 2` started two probes into one folder."""
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", "ci", "-o", f"results_dir={tmp_path}", "--only",
                        "probe", "--only", "probe", "--jobs", "2", "--progress-every", "0"], capture_output=True, text=True,
                       cwd=REPO, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("[probe] started") == 1


def test_executor_ray_without_ray_names_the_extra(monkeypatch):
    import importlib.util

    from soar_lite.config import ConfigError, load_config

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ConfigError, match=r"executor\.kind: ray needs the Ray package.*pip install 'soar_lite\[ray\]'"):
        load_config("ci", ["executor.kind=ray"])


def test_a_stage_before_the_probe_is_refused_before_the_model_loads(tmp_path):
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", "ci", "-o", f"results_dir={tmp_path}", "--only",
                        "evaluate"], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 2 and "run the probe first" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ci").exists()


def test_progress_lines_show_work_done_and_an_eta(tmp_path):
    """Before: a stage was silent while its last printed line did not change (the probe ~3 min; a paper-world fresh
    student for hours). Now every line has work done / total in the stage's unit and an ETA from the rate so far."""
    from soar_lite.cli import Progress
    from soar_lite.rundir import RunLayout, report_progress

    layout = RunLayout(tmp_path)
    prog = Progress(tmp_path, every=0)
    prog.start("meta_train")
    t0 = prog.running["meta_train"]["t0"]
    assert prog.line("meta_train", t0 + 1) is None  # nothing reported yet
    report_progress(layout, "meta_train", "meta", 2, 26, "outer steps")
    report_progress(layout, "meta_train", "meta_run1", 1, 26, "outer steps")
    assert prog.line("meta_train", t0 + 60) == "[meta_train] 1.0 min, 3/52 outer steps"
    report_progress(layout, "meta_train", "meta", 5, 26, "outer steps")
    # 3 more steps in 60 s: 46 left at 0.05 steps/s
    assert prog.line("meta_train", t0 + 120) == "[meta_train] 2.0 min, 6/52 outer steps, ETA 15 min"
    prog.start("meta_train")  # a new run of the stage forgets the old counts
    assert prog.line("meta_train") is None


def test_params_prints_a_files_values_beside_the_defaults():
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "params", "ci"], capture_output=True, text=True,
                       cwd=REPO, timeout=120)
    assert r.returncode == 0 and "model.lora_r: 8 (default: 64)" in r.stdout
    bad = subprocess.run([sys.executable, "-m", "soar_lite.cli", "params", "nosuch"], capture_output=True, text=True,
                         cwd=REPO, timeout=120)
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_the_reader_view_hides_set_up_code_and_progress_but_keeps_results():
    import nbformat

    from soar_lite.cli import reader_view

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# report"),
                nbformat.v4.new_code_cell("params_path = 'x'", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("params_path = 'ci'", metadata={"tags": ["injected-parameters"]}),
                nbformat.v4.new_code_cell("cfg = notebook_setup(...)", metadata={"tags": ["setup"]},
                                          outputs=[nbformat.v4.new_output("stream", text="rendered from commit abc")]),
                nbformat.v4.new_code_cell("res = stage.run(cfg)", metadata={"tags": ["stage"]},
                                          outputs=[nbformat.v4.new_output("stream", text="[1/9] hard-only student 0"),
                                                   nbformat.v4.new_output("display_data", data={"text/plain": "a table"})]),
                nbformat.v4.new_code_cell("print(1)", outputs=[nbformat.v4.new_output("stream", text="1")])]
    view = reader_view(nb)
    assert [c.source for c in view.cells] == ["# report", "cfg = notebook_setup(...)", "res = stage.run(cfg)", "print(1)"]
    assert view.cells[1].metadata.transient == {"remove_source": True} and view.cells[1].outputs
    assert [o.output_type for o in view.cells[2].outputs] == ["display_data"] and view.cells[3].outputs
    assert len(nb.cells) == 6 and len(nb.cells[4].outputs) == 2  # the notebook itself is untouched
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter().from_notebook_node(view)
    assert "notebook_setup" not in html and "rendered from commit abc" in html and "hard-only student" not in html
