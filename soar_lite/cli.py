"""`soar-lite run PARAMS [--only STAGE] [--resume] [--jobs N] [--online] [-o key=value ...]`: the notebooks through
papermill; `soar-lite cost PARAMS [--from-run METRICS]`: the cost model (cost.py); `soar-lite params`: every
params key with its default, help and paper source; `soar-lite notebooks DIR`: the shipped notebooks and params
copied out; `soar-lite snr PARAMS`: the teacher-gradient SNR per outer step, before a run (snr.py); `soar-lite
index RUN_DIR`: the run's index page (report_index.py).

Each stage's notebook is executed into `results/<name>/<notebook>.ipynb` and exported to HTML beside it;
with `--jobs N` stages whose inputs are ready run side by side, one process each. The params file is
validated first (strictly) so a typo stops the run before anything is written.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from .rundir import RunDirError, RunLayout, check_writable, run_lock
from .stages import STAGES
from .tasks.base import DataError


# `run --pin-cpu`: the CPU code paths that make numbers differ between x86 machines (scripts/cpu_determinism.py),
# pinned to ones every x86-64 CPU runs the same way: ATen's scalar kernels, MKL's conditional numerical
# reproducibility mode, oneDNN capped at SSE4.1. Set before the stage processes import torch.
PIN_CPU_ENV = {"ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "SSE41"}


def default_notebook_dir() -> Path:
    """The checkout's notebooks/, or the copy a pip install carries inside the package (soar_lite/notebooks/)."""
    here = Path(__file__).resolve().parent
    checkout = here.parent / "notebooks"
    return checkout if (checkout / STAGES["probe"].notebook).is_file() else here / "notebooks"


def copy_notebooks(dest: Path, force: bool = False) -> list[Path]:
    """`soar-lite notebooks DIR`: the shipped notebooks and params files, copied out to open in Jupyter or Colab."""
    import shutil

    from .config import shipped_params

    src = default_notebook_dir()
    files = [(nb, dest / nb.name) for nb in sorted(src.glob("*.ipynb"))]  # every shipped notebook (00 ... 06)
    files += [(path, dest / "params" / path.name) for path in shipped_params().values()]
    clash = [str(d) for _, d in files if d.exists()]
    if clash and not force:
        raise FileExistsError(f"{clash[0]} exists ({len(clash)} files would be replaced): pass --force to replace them")
    for s, d in files:
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(s, d)
    return [d for _, d in files]


def hub_models(cfg, stages) -> list[tuple[str, str]]:
    """(params key, hub id) of every hub model the selected stages will load: model.path, an embedder named by id
    (analyze.embedder), an hf: judge (analyze.judge)."""
    from .models import resolve_model_path
    from .tasks import make_task

    from .models import gguf_source

    source = gguf_source(cfg.model.path, cfg.model.gguf_file)  # a GGUF model: the file must exist (no hub)
    if source is not None and not source.is_file():
        raise FileNotFoundError(f"model.path {cfg.model.path!r}: GGUF file not found: {source}")
    out = [] if source is not None else [("model.path", resolve_model_path(cfg.model.path))]
    if "analyze" in stages:
        embedder = make_task(cfg.task).default_embedder if cfg.analyze.embedder == "auto" else cfg.analyze.embedder
        if embedder not in ("char-ngram", "minilm"):
            out.append(("analyze.embedder", embedder))
        if cfg.analyze.judge.startswith("hf:"):
            out.append(("analyze.judge", cfg.analyze.judge.partition(":")[2]))
    return out


def hub_like(name: str) -> bool:
    """Whether `name` reads as a Hugging Face hub id (`name` or `org/name`), not a local path."""
    import re

    return bool(re.fullmatch(r"[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?", name)) and not name.endswith((".", "-"))


def check_hub_model(cfg, stages=None) -> None:
    """With downloads off, every hub model or dataset a run will need that is not in the local cache is named now,
    not as the hub's 'check your internet connection' deep inside a stage: model.path, analyze.embedder, an hf:
    judge, an hf: data pool (probe.pool, probe.level_pool)."""
    from .models import check_model_folder

    stages = stages or list(STAGES)
    for key, path in hub_models(cfg, stages):
        check_model_folder(path, key)
        if path and not Path(path).exists() and not hub_like(path):
            raise FileNotFoundError(f"{key} {path!r}: no such folder ({Path(path).expanduser().resolve()}; a relative "
                                    f"model.path is read from the params file's folder when a folder is there, else "
                                    f"from the working directory) and not a hub id (org/name)")
    if os.environ.get("HF_HUB_OFFLINE") != "1":
        return
    from huggingface_hub import try_to_load_from_cache

    for key, path in hub_models(cfg, stages):
        if path and not Path(path).exists() and not isinstance(try_to_load_from_cache(path, "config.json"), str):
            what = "is not a folder and not" if key == "model.path" else "is not a folder or"
            raise FileNotFoundError(f"{key} {path!r} {what} in the local Hugging Face cache, and hub downloads are off: "
                                    f"pass --online (or set SOAR_LITE_ONLINE=1) to download it")
    if "probe" in stages:
        for key in ("pool", "level_pool"):
            pool = getattr(cfg.probe, key)
            if pool.startswith("hf:"):
                raise FileNotFoundError(f"probe.{key} {pool!r} is a hub dataset and hub downloads are off: pass --online "
                                        f"(or set SOAR_LITE_ONLINE=1), or point it at a local file")


def check_teacher_turns(cfg) -> None:
    """meta.teacher_turns 2 (Table 8's multi-turn teacher) needs a task with the two-turn hooks."""
    from .tasks import make_task

    missing = make_task(cfg.task).missing_two_turn_hooks() if cfg.meta.teacher_turns == 2 else []
    if missing:
        raise RunDirError(f"meta.teacher_turns: 2 needs a task with a two-turn teacher (Task.teacher_question_prompt "
                          f"and the three hooks beside it); task {cfg.task.name!r} lacks {', '.join(missing)}")


def preflight(cfg, stages: list[str], resume: bool) -> None:
    """Every refusal of `soar-lite run` before anything is written (RunDirError, DataError, FileNotFoundError, one
    line each): a results path that is a file or read-only, a hub model or dataset that cannot be had, the probe's
    data files (missing, empty, malformed, an unknown pool), a fresh meta-training run into checkpoints or a resume
    with other values; a stale temporary file of a killed write is removed."""
    from .rundir import remove_stale_tmp

    check_writable(cfg.run_dir)
    check_hub_model(cfg, stages)
    check_teacher_turns(cfg)
    if "probe" not in stages and any("probe" in STAGES[s].needs for s in stages) \
            and not cfg.layout.hard_train.exists():
        raise RunDirError(f"{cfg.layout.hard_train} does not exist: run the probe first (soar-lite run PARAMS --only "
                          f"probe, or without --only)")
    for stage in stages:  # each stage's own refusals (its module's preflight)
        STAGES[stage].preflight(cfg, resume)
    if cfg.run_dir.exists():
        remove_stale_tmp(cfg.run_dir)


def waves(stages: list[str]) -> list[list[str]]:
    """The stages in groups that can run at once: each group needs only stages of earlier groups (or ones
    not selected, whose outputs must already exist)."""
    done, left, out = set(), list(stages), []
    while left:
        ready = [s for s in left if all(d in done or d not in stages for d in STAGES[s].needs)]
        out.append(ready)
        done.update(ready)
        left = [s for s in left if s not in ready]
    return out


def stages_for(cfg) -> list[str]:
    """The params' `stages` (in run order), else every stage; a world's own report only for tasks that have one
    (`Task.world_report`)."""
    from .tasks import make_task

    has_report = make_task(cfg.task).world_report
    return [name for name, st in STAGES.items() if (has_report or not st.world_report)
            and (not cfg.stages or name in cfg.stages)]


def reader_view(nb):
    """The notebook as a reader sees it in the HTML (the .ipynb keeps everything): the parameters cells (papermill's
    and the injected ones) left out, the set-up cell's code hidden (its banner -- commit, params, deviations -- kept),
    and the progress lines a stage's run cell prints dropped (its tables and figures kept). Cells are found by their
    tags (`setup`, `stage`; notebooks/*.py)."""
    import copy

    nb = copy.deepcopy(nb)
    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & {"parameters", "injected-parameters"}:
            continue
        if "setup" in tags:
            cell.metadata.setdefault("jupyter", {})["source_hidden"] = True
            cell.metadata["transient"] = {"remove_source": True}
        if "stage" in tags and cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if o.get("output_type") != "stream"]
        cells.append(cell)
    nb.cells = cells
    return nb


def export_html(ipynb: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    nb = reader_view(nbformat.read(ipynb, as_version=4))
    title = nb.metadata.get("title") or ipynb.stem
    body, _ = HTMLExporter().from_notebook_node(nb, resources={"metadata": {"name": title}})
    out = ipynb.with_suffix(".html")
    out.write_text(body)
    return out


def finished_before(out_dir: Path, stages: list[str], now: dict) -> list[str]:
    """The stages a `--resume` of the whole run leaves alone: the report exists and its provenance's last part
    finished from the commit the run has now (`now`: `stages.common.provenance`), with no uncommitted changes either
    time, and with the same params hash. Anything else runs again (a stage's own resume keeps its finished work)."""
    layout, out = RunLayout(out_dir), []
    for stage in stages:
        path = layout.provenance(stage)
        if not (path.exists() and layout.notebook(STAGES[stage].notebook).exists()):
            continue
        try:
            parts = json.loads(path.read_text()).get("parts") or []
        except (OSError, ValueError):
            continue
        last = parts[-1] if parts else {}
        if (last.get("finished") and now.get("commit") and last.get("commit") == now["commit"]
                and not last.get("uncommitted_changes") and not now.get("uncommitted_changes")
                and last.get("params_sha256") == now.get("params_sha256")):
            out.append(stage)
    return out


def run_stage(stage: str, params: Path, overrides: list[str], resume: bool, out_dir: Path, notebook_dir: Path) -> Path:
    import papermill as pm

    src = notebook_dir / STAGES[stage].notebook
    if not src.exists():
        raise FileNotFoundError(f"notebook for stage {stage!r} not found: {src}")
    layout = RunLayout(out_dir)
    partial, dst = layout.partial_notebook(STAGES[stage].notebook), layout.notebook(STAGES[stage].notebook)
    # executed into NN_stage.partial.ipynb, moved over the report only when every cell ran: a failed stage leaves
    # its partial notebook to read and the last good report (.ipynb and .html) untouched
    # the kernel listens on the loopback interface only; its start-up warning about TCP without encryption is
    # dropped with its other warnings (errors still show)
    from .rundir import PartHeartbeat, beat_part, parts_summary, record_provenance, start_part
    from .stages.common import display_path, provenance

    shown = display_path(params)  # relative to the working directory, or a shipped name: no machine path in reports
    prov = provenance(str(params), overrides)
    t0 = time.time()
    layout.provenance(stage).parent.mkdir(parents=True, exist_ok=True)
    start_part(layout, stage, prov, resume)  # a render in several sittings: one part each (report_index shows them)
    with PartHeartbeat(layout, stage):
        pm.execute_notebook(str(src), str(partial), parameters={"params_path": shown, "overrides": list(overrides),
                                                                 "resume": bool(resume)},
                            kernel_name="python3", progress_bar=False, cwd=os.getcwd(),
                            extra_arguments=["--IPKernelApp.log_level=ERROR"])
    strip_machine_paths(partial, src.name, dst.name, STAGES[stage].title)
    os.replace(partial, dst)
    export_html(dst)
    parts = beat_part(layout, stage, finished=True)["parts"]
    if len(parts) > 1:  # the stage's start is its first part's; its wall time the parts' sum
        prov = {**prov, "started": parts[0]["started"][:16] + " UTC"}
    record_provenance(layout, stage, **prov, seconds=round(time.time() - t0, 1), all_parts=parts_summary(parts),
                      finished=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    return dst


def strip_machine_paths(ipynb: Path, source_name: str, output_name: str, title: str) -> None:
    """papermill records the absolute input and output paths in the notebook's metadata: keep the file names only,
    and give the report its title (the HTML page's <title>)."""
    import json

    nb = json.loads(ipynb.read_text())
    pmeta = nb.get("metadata", {}).get("papermill", {})
    if "input_path" in pmeta:
        pmeta["input_path"] = f"notebooks/{source_name}"
    if "output_path" in pmeta:
        pmeta["output_path"] = output_name
    nb.setdefault("metadata", {})["title"] = title
    ipynb.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def stage_progress(partial: Path) -> str | None:
    """'cell 3/9: <its last printed line>' from a running stage's partial notebook (papermill saves it after every
    cell and every 30 s inside a long one), or None before it exists."""
    import json

    try:
        nb = json.loads(partial.read_text())
    except (OSError, ValueError):
        return None
    cells = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    done = sum(c.get("metadata", {}).get("papermill", {}).get("status") == "completed" for c in cells)
    last = ""
    for c in cells:
        for out in c.get("outputs", []):
            if out.get("output_type") == "stream" and out.get("name") == "stdout":
                text = out.get("text", "")
                lines = [line for line in ("".join(text) if isinstance(text, list) else text).splitlines() if line.strip()]
                last = lines[-1] if lines else last
    return f"cell {done}/{len(cells)}" + (f": {last.strip()[:140]}" if last else "")


class Progress:
    """Every `every` seconds, one line per running stage: elapsed minutes, work done / total in the stage's own unit
    (outer steps, students, problems probed; the jobs' progress files, `rundir.report_progress`) with an ETA from the
    rate seen so far, and the notebook cell it is in with its last printed line."""

    def __init__(self, out_dir: Path, every: float):
        import threading

        self.layout, self.every, self.running, self.lock = RunLayout(out_dir), every, {}, threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        if every > 0:
            self._thread.start()

    def start(self, stage: str) -> None:
        import shutil

        shutil.rmtree(self.layout.progress(stage), ignore_errors=True)  # counts of an earlier run of the stage
        with self.lock:
            self.running[stage] = {"t0": time.time(), "first": None}

    def done(self, stage: str) -> None:
        with self.lock:
            self.running.pop(stage, None)

    def line(self, stage: str, now: float | None = None) -> str | None:
        """The progress line of a running stage (None before it says anything)."""
        now = time.time() if now is None else now
        st = self.running[stage]
        parts = [f"[{stage}] {(now - st['t0']) / 60:.1f} min"]
        work = work_done(self.layout.progress(stage))
        if work:
            done, total, unit = work
            if st["first"] is None or done < st["first"][0]:
                st["first"] = (done, now)
            d0, t0 = st["first"]
            eta = ""
            if done > d0 and now > t0:
                eta = f", ETA {(total - done) * (now - t0) / (done - d0) / 60:.0f} min"
            parts.append(f"{done}/{total} {unit}{eta}")
        cell = stage_progress(self.layout.partial_notebook(STAGES[stage].notebook))
        if cell:
            parts.append(cell)
        return ", ".join(parts) if len(parts) > 1 else None

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            with self.lock:
                for stage in list(self.running):
                    text = self.line(stage)
                    if text:
                        print(text, flush=True)

    def close(self) -> None:
        self._stop.set()


def work_done(folder: Path) -> tuple[int, int, str] | None:
    """(done, total, unit) summed over a stage's progress files (one per job), or None when there are none."""
    import json

    done = total = 0
    units = []
    for f in sorted(Path(folder).glob("*.json")) if Path(folder).is_dir() else []:
        try:
            p = json.loads(f.read_text())
            done, total = done + int(p["done"]), total + int(p["total"])
            units.append(str(p["unit"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return (done, total, "/".join(dict.fromkeys(units))) if units else None


def print_cost(args) -> int:
    from .config import ConfigError, load_config
    from .cost import Throughput, cost_report, fresh_students, runs_stage

    try:
        cfg = load_config(args.params, args.override)
        thr = None
        if args.throughput:
            parts = args.throughput.split(",")
            if len(parts) != 2:
                raise ValueError(f"--throughput wants GEN,TRAIN tokens per second, got {args.throughput!r}")
            gen, train = map(float, parts)
            thr = Throughput(gen, train, score=3 * train)  # scoring is a forward pass: ~1/3 of forward + backward
        rows, lengths = cost_report(cfg, args.from_run, thr)
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"soar-lite cost: {e}", file=sys.stderr)
        return 2
    print(f"{cfg.name}: {cfg.model.path}, {cfg.meta.outer_steps} outer steps; mean tokens per row: "
          f"student prompt {lengths.student_prompt:.0f} / completion {lengths.student_completion:.0f}, teacher "
          f"prompt {lengths.teacher_prompt:.0f} / completion {lengths.teacher_completion:.0f}")
    if not rows:
        print("no throughput to price it with: pass --from-run or --throughput")
    for r in rows:
        (s_lo, s_hi), (lo, hi), (n_lo, n_hi) = r["h_per_outer_step"], r["h_per_meta_run"], r["student_rollouts_per_run"]
        print(f"- {r['throughput']}\n    device-hours: outer step {_h(s_lo)}-{_h(s_hi)}; meta-training run "
              f"{_h(lo)}-{_h(hi)} ({n_lo:,.0f}-{n_hi:,.0f} student rollouts); fresh-student run "
              f"{_h(r['h_per_fresh_student_run'])}; probe {_h(r['h_probe'])}; Intrinsic-T run {_h(r['h_intrinsic_run'])}"
              + (f"; SNR estimate (meta.snr_draws {cfg.meta.snr_draws}) {_h(r['h_snr'])}" if cfg.meta.snr_draws else "")
              + 
              f"\n    whole pipeline (probe, {sum(map(cfg.meta.runs_for, cfg.meta.teachers)) * runs_stage(cfg, 'meta_train')} "
              f"meta-training runs, {fresh_students(cfg.evaluate) * runs_stage(cfg, 'evaluate')} fresh students): "
              f"{_h(r['h_pipeline'][0])}-{_h(r['h_pipeline'][1])} device-hours; wall time with executor "
              f"{cfg.executor.kind} x {cfg.executor.workers} (one device per worker): "
              f"{_h(r['h_pipeline_wall'][0])}-{_h(r['h_pipeline_wall'][1])} h")
    return 0


def print_snr(args) -> int:
    """soar-lite snr: one line per grouping (soar_lite.snr)."""
    import numpy as np

    from .config import ConfigError, load_config

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        cfg = load_config(args.params, args.override)
        groupings = [parse_grouping(g) for g in args.grouping]
        draws = args.draws or cfg.meta.snr_draws or 16
        if draws < 2:
            raise ValueError(f"--draws must be >= 2, got {draws}")
        from .snr import groupings as default_groupings
        from .stages.meta_train import teacher_snr

        each = groupings or default_groupings(cfg)
        # what it costs, before it starts: each draw is a full outer step of the untrained teacher (every student
        # trained and scored), per grouping; `soar-lite cost` prices outer steps on measured throughput
        print(f"soar-lite snr: {draws} draws x {len(each)} groupings ({', '.join('x'.join(map(str, g)) for g in each)}) "
              f"= {draws * len(each)} full outer steps of the untrained teacher, each training g x r students for "
              f"{cfg.meta.inner_steps} inner steps (`soar-lite cost PARAMS --from-run RUN` prices one outer step; "
              f"meta.snr_draws prices it with a run)", file=sys.stderr, flush=True)
        table = teacher_snr(cfg, groupings or None, draws, log=lambda m: print(m, file=sys.stderr, flush=True))
    except (ConfigError, ValueError, FileNotFoundError) as e:
        print(f"soar-lite snr: {e}", file=sys.stderr)
        return 2
    print(f"{cfg.name}: teacher-gradient SNR per outer step, {draws} draws of the untrained teacher per grouping "
          f"(95% jackknife interval); outer steps for SNR 1 = 1/SNR (meta.outer_steps = {cfg.meta.outer_steps})")
    for r in table.itertuples():
        head = f"  g={r.g:<4d} n={r.n:<4d} r={r.r:<2d} ({r.g * r.n} teacher samples/step): "
        tail = f"R_k {r.reward_mean:+.5f}, SD between datasets {r.reward_sd_between:.5f}; {r.seconds:.0f} s"
        if np.isnan(r.snr):
            print(head + "SNR undefined: every draw's gradient is 0 (no reward differed between datasets); " + tail)
            continue
        steps = "never (SNR <= 0)" if not np.isfinite(r.steps_for_snr_1) else f"~{r.steps_for_snr_1:,.0f}"
        print(head + f"SNR {r.snr:.4f} (95% CI {r.ci_low:.4f} to {r.ci_high:.4f}) -> {steps} outer steps; " + tail)
    return 0


def run_compare(args) -> int:
    """soar-lite compare: the summary lines here, the tables and the rendered 06_compare report in --out."""
    from .compare import CompareError, load_run, summary_lines, write_summary

    if len(args.runs) < 2:
        print("soar-lite compare: name at least two run directories", file=sys.stderr)
        return 2
    try:
        runs = [load_run(r) for r in args.runs]
    except CompareError as e:
        print(f"soar-lite compare: {e}", file=sys.stderr)
        return 2
    names = [r.name for r in runs]
    if len(set(names)) < len(names):  # two runs of one name: tell them apart by their parent folder
        for r in runs:
            r.name = f"{r.path.parent.name}/{r.path.name}"
    out = args.out or Path("results") / "compare" / "_vs_".join(reversed([n.replace("/", "-") for n in names[:2]]))
    check_writable(out)
    print("\n".join(summary_lines(runs)))
    write_summary(runs, out)
    import papermill as pm

    from .stages.common import display_path

    nb = out / "06_compare.ipynb"
    pm.execute_notebook(str(default_notebook_dir() / "06_compare.ipynb"), str(nb), progress_bar=False,
                        parameters={"runs": [display_path(r) for r in args.runs], "out_dir": display_path(out)},
                        kernel_name="python3",
                        cwd=os.getcwd(), extra_arguments=["--IPKernelApp.log_level=ERROR"])
    strip_machine_paths(nb, "06_compare.ipynb", nb.name, "06 Compare runs")
    export_html(nb)
    print(f"report: {nb.with_suffix('.html')}")
    return 0


def positive_int(text: str) -> int:
    """--jobs N: a whole number of at least 1 (argparse names the flag when it is not)."""
    import argparse

    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {n}")
    return n


def parse_grouping(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    try:
        g, n, r = (int(p) for p in parts)
    except ValueError:
        raise ValueError(f"--grouping wants G,N,R (three integers), got {text!r}") from None
    if g < 2 or n < 1 or r < 1:
        raise ValueError(f"--grouping {text}: g must be >= 2, n and r >= 1")
    return g, n, r


def _h(hours: float) -> str:
    return f"{hours:,.0f}" if hours >= 100 else f"{hours:.1f}" if hours >= 1 else f"{hours:.3f}"


def main(argv=None) -> int:
    from .config import ConfigError, load_config, resolve_params

    ap = argparse.ArgumentParser(prog="soar-lite", description="SOAR reproduction: run the notebooks with papermill")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser(
        "run", help="execute the notebooks for a params file",
        description="Execute the stage notebooks (probe, tiny_world, meta_train, evaluate, analyze) with papermill for "
                    "one params file. Each rendered report goes to <results_dir>/<name>/NN_<stage>.ipynb and .html "
                    "(results_dir and name from the params file; name defaults to the file's name), beside "
                    "tables/, figures/, the resolved config.yaml and the checkpoints.",
        epilog="PARAMS is a YAML file (see params/ and `soar-lite params`), or the name of a shipped one: tiny (the "
               "quick look), tiny-full (the powered run), ci, paper-math, paper-harp, colab-small. Examples: "
               "soar-lite run tiny --jobs 2;  soar-lite run params/tiny.yaml --only meta_train --resume;  "
               "soar-lite run colab-small --online -o meta.outer_steps=2")
    run.add_argument("params", type=Path, metavar="PARAMS", help="a params YAML file or a shipped params name")
    run.add_argument("--only", action="append", choices=list(STAGES), help="run only this stage (repeatable)")
    run.add_argument("--resume", action="store_true", help="continue a killed meta-training run from its checkpoint "
                     "(the params must match the ones it was made with, outer_steps may grow)")
    run.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                     help="override a params value (YAML), e.g. -o meta.outer_steps=2 -o evaluate.ks=[1,8]")
    run.add_argument("--notebooks", type=Path, default=None, help="folder of the stage notebooks (default: shipped)")
    run.add_argument("--jobs", type=positive_int, default=1, help="run independent stages side by side (one process each); "
                     "2 on a 2-core machine: tiny_world beside meta_train, evaluate beside analyze")
    run.add_argument("--online", action="store_true", help="allow model and data downloads from the Hugging Face hub "
                     "(off by default: HF_HUB_OFFLINE=1; the same as SOAR_LITE_ONLINE=1)")
    run.add_argument("--pin-cpu", action="store_true", help="pin the CPU code paths (ATen, MKL, oneDNN) so that "
                     "tables do not depend on which x86 CPU runs them (x1.13 the time at ci size; docs/running.md, Determinism)")
    run.add_argument("--progress-every", type=float, default=30.0, metavar="S",
                     help="print each running stage's progress (cells done / total, its last line) every S seconds")
    nbs = sub.add_parser("notebooks", help="copy the shipped notebooks and params files into a folder (Jupyter, Colab)")
    nbs.add_argument("dest", type=Path, metavar="DIR")
    nbs.add_argument("--force", action="store_true", help="replace files that exist")
    cost = sub.add_parser("cost", help="estimate the work and device-hours a params file asks for (soar_lite.cost)")
    cost.add_argument("params", type=Path)
    cost.add_argument("--from-run", type=Path, help="a meta-training metrics.jsonl: measured throughput and lengths")
    cost.add_argument("--throughput", help="GEN,TRAIN tokens/s of one device, e.g. 20000,8000")
    cost.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    params = sub.add_parser("params", help="list every params key: type, default, help and the paper's source; with "
                                          "PARAMS, that file's values beside the defaults")
    params.add_argument("params", type=Path, nargs="?", metavar="PARAMS", help="a params YAML file or a shipped name")
    params.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    cmp = sub.add_parser("compare", help="compare run directories: params diff, pass@k with intervals, meta-training "
                                         "curves, the rerun tolerance check; renders notebook 06_compare")
    cmp.add_argument("runs", type=Path, nargs="+", metavar="RUN_DIR", help="two or more run directories; the first is "
                                                                          "the reference")
    cmp.add_argument("--out", type=Path, default=None, help="folder of the rendered report (default: "
                                                           "results/compare/<b>_vs_<a>)")
    idx = sub.add_parser("index", help="write a run directory's index page (index.md, index.html): the paper's tables "
                                       "and figures -> this run's reports, provenance, wall times, findings")
    idx.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    snr = sub.add_parser("snr", help="estimate the teacher-gradient SNR per outer step before a run (soar_lite.snr)",
                         description="Estimates the teacher-gradient signal-to-noise ratio per outer step from K draws "
                                     "of the untrained teacher (each a full outer step with the real reward) and "
                                     "prints the outer steps it implies, for the params' g x n x r and for "
                                     "meta.paper_grouping. Needs the probe's hard-train set "
                                     "(soar-lite run PARAMS --only probe).")
    snr.add_argument("params", type=Path, metavar="PARAMS")
    snr.add_argument("--draws", type=int, default=0, help="K gradient draws per grouping (default: meta.snr_draws, "
                                                          "else 16)")
    snr.add_argument("--grouping", action="append", default=[], metavar="G,N,R",
                     help="a grouping to estimate (repeatable; default: the params' and meta.paper_grouping)")
    snr.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args(argv)
    if args.cmd == "cost":
        return print_cost(args)
    if args.cmd == "snr":
        return print_snr(args)
    if args.cmd == "compare":
        return run_compare(args)
    if args.cmd == "index":
        from .report_index import write

        if not args.run_dir.is_dir():
            print(f"soar-lite index: {args.run_dir} is not a run directory", file=sys.stderr)
            return 2
        print(f"wrote {write(args.run_dir)}")
        return 0
    if args.cmd == "params":
        from .config import describe, values_beside_defaults

        if args.params is None:
            print("\n".join(describe()))
            return 0
        try:
            print("\n".join(values_beside_defaults(load_config(args.params, args.override))))
        except ConfigError as e:
            print(f"soar-lite: {e}", file=sys.stderr)
            return 2
        return 0
    if args.cmd == "notebooks":
        try:
            copied = copy_notebooks(args.dest, args.force)
        except OSError as e:
            print(f"soar-lite: {e}", file=sys.stderr)
            return 2
        print(f"copied {len(copied)} files to {args.dest}/ (notebooks, params/); open one in Jupyter or Colab")
        return 0

    import signal

    def _terminate(signum, frame):  # a parent `soar-lite run` ending this stage process: clean up like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _terminate)
    if args.online:
        os.environ["SOAR_LITE_ONLINE"] = "1"
    if args.pin_cpu:  # inherited by the stage processes and their workers, which import torch after this
        os.environ.update(PIN_CPU_ENV)
    if not os.environ.get("SOAR_LITE_ONLINE"):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        cfg = load_config(args.params, args.override)
        params = resolve_params(args.params).resolve()
    except ConfigError as e:
        print(f"soar-lite: {e}", file=sys.stderr)
        return 2
    stages = list(dict.fromkeys(args.only)) if args.only else stages_for(cfg)  # --only X --only X: one process
    out_dir = cfg.run_dir
    if args.resume and not args.only:  # a render in parts: what finished in an earlier sitting is not run again
        from .stages.common import provenance

        done = finished_before(out_dir, stages, provenance(str(params), args.override))
        for stage in done:
            print(f"[{stage}] finished in an earlier part, from this commit with these params: not run again")
        stages = [s for s in stages if s not in done]
        if not stages:
            from .report_index import write as write_index

            write_index(out_dir)
            print(f"every stage had finished; results in {out_dir}/")
            return 0
    notebooks = args.notebooks or default_notebook_dir()
    try:
        preflight(cfg, stages, args.resume)
        with run_lock(out_dir, "run"):  # ... or another `soar-lite run` writing into the same folder
            t_all = time.time()
            progress = Progress(out_dir, args.progress_every)
            try:
                if args.jobs > 1:
                    rc = run_parallel(stages, args, params, out_dir, notebooks, progress)
                else:
                    rc = 0 if all(run_logged(stage, f"[{i}/{len(stages)}]", args, params, out_dir, notebooks, progress)
                                  for i, stage in enumerate(stages, 1)) else 1
            finally:
                progress.close()
    except (RunDirError, DataError, FileNotFoundError) as e:
        print(f"soar-lite: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # the stage processes and their kernels were ended on the way out (run_parallel,
        # papermill's kernel manager); every checkpoint and finished report is kept
        print(f"soar-lite: interrupted; finished stages and meta-training checkpoints are kept in {out_dir}/: run the "
              f"same command with --resume to continue", file=sys.stderr)
        return 130
    from .report_index import write as write_index

    write_index(out_dir)  # what finished is indexed even when a stage failed
    if rc:
        return rc
    print(f"all stages done in {time.time() - t_all:.0f} s; results in {out_dir}/ (open {out_dir}/index.html first)")
    return 0


def run_logged(stage: str, tag: str, args, params: Path, out_dir: Path, notebooks: Path, progress=None) -> bool:
    t0 = time.time()
    print(f"{tag} {stage}: {STAGES[stage].notebook} -> {out_dir}/", flush=True)
    if progress:
        progress.start(stage)
    try:
        run_stage(stage, params, args.override, args.resume, out_dir, notebooks)
    except Exception as e:  # papermill raises PapermillExecutionError with the cell's traceback
        print(f"soar-lite: stage {stage} failed: {str(e).strip().splitlines()[-1] if str(e).strip() else e!r}",
              file=sys.stderr)
        print(f"soar-lite: the partial notebook is {RunLayout(out_dir).partial_notebook(STAGES[stage].notebook)}",
              file=sys.stderr)
        return False
    finally:
        if progress:
            progress.done(stage)
    print(f"{tag} {stage} done in {time.time() - t0:.0f} s", flush=True)
    return True


def _as_finished(procs: dict):
    """(stage, (process, log, start)) in the order the processes end, so each is reported when it ends."""
    pending = dict(procs)
    while pending:
        for stage in [s for s, (proc, _, _) in pending.items() if proc.poll() is not None]:
            yield stage, pending.pop(stage)
        time.sleep(0.5)


def run_parallel(stages: list[str], args, params: Path, out_dir: Path, notebooks: Path, progress=None) -> int:
    """Each wave's stages as `soar-lite run --only STAGE` processes, at most args.jobs at a time; a stage's
    output goes to logs/<stage>.log. Stops after the wave in which a stage failed. Returns 0, or 2 when a stage
    process was refused (exit 2), else 1 when one failed. On an interrupt every stage process still running is
    ended before the KeyboardInterrupt goes on."""
    import subprocess

    layout = RunLayout(out_dir)
    base = [sys.executable, "-m", "soar_lite.cli", "run", str(params), "--notebooks", str(notebooks),
            "--progress-every", "0"]  # the parent reports progress
    base += [a for ov in args.override for a in ("-o", ov)] + (["--resume"] if args.resume else [])
    base += ["--pin-cpu"] if args.pin_cpu else []
    for wave in waves(stages):
        for start in range(0, len(wave), args.jobs):
            procs = {}
            for stage in wave[start:start + args.jobs]:
                layout.log(stage).parent.mkdir(parents=True, exist_ok=True)
                log = open(layout.log(stage), "w")
                print(f"[{stage}] started -> {layout.notebook(STAGES[stage].notebook)} (log: {log.name})", flush=True)
                procs[stage] = (subprocess.Popen(base + ["--only", stage], stdout=log, stderr=subprocess.STDOUT), log,
                                time.time())
                if progress:
                    progress.start(stage)
            codes = []
            try:
                for stage, (proc, log, t0) in _as_finished(procs):
                    rc = proc.returncode
                    log.close()
                    if progress:
                        progress.done(stage)
                    if rc == 0:
                        print(f"[{stage}] done in {time.time() - t0:.0f} s", flush=True)
                    else:
                        codes.append(rc)
                        lines = Path(log.name).read_text().strip().splitlines() or [f"rc={rc}"]
                        why = next((l for l in lines if l.startswith(f"soar-lite: stage {stage} failed")), lines[-1])
                        print(f"{why} (log: {log.name}; partial notebook: {layout.partial_notebook(STAGES[stage].notebook)})",
                              file=sys.stderr)
            finally:  # an interrupt: end the stage processes (each ends its kernel) before going on
                for proc, log, _ in procs.values():
                    if proc.poll() is None:
                        proc.terminate()
                for proc, log, _ in procs.values():
                    try:
                        proc.wait(timeout=30)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                    log.close()
            if codes:
                return 2 if 2 in codes else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
