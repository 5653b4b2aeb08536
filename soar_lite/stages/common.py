"""What every stage shares: the report banner, opening the run directory, loading the policy and task,
the hard sets the probe wrote, and a teacher's question set (one helper, so evaluation and analysis sample
the same way)."""
from __future__ import annotations

import contextlib
import functools
import os
from pathlib import Path

from ..models import Snapshot, load_policy, load_snapshot, restore
from ..rundir import RunLayout, check_writable, read_json, remove_stale_tmp, run_lock, write_json
from ..seeds import derive, stream_key
from ..teacher import sample_qa_pairs
from ..tasks import make_task
from ..tasks.base import Problem, QAPair


def banner(cfg) -> str:
    """What runs, and every deviation from the paper (printed at the top of each notebook)."""
    lines = [f"run '{cfg.name}': task={cfg.task.name}, model={cfg.model.path}, seed={cfg.seed}"]
    if cfg.description:
        lines.append(cfg.description.strip())
    if cfg.deviations:
        lines.append("Deviations from the paper:")
        lines += [f"  - {d}" for d in cfg.deviations]
    return "\n".join(lines)


SCORE_LABELS = {"logprob": "mean log-likelihood of the true answer (nats/token)", "greedy": "greedy accuracy",
                "sampled": "sampled accuracy"}


def score_label(cfg) -> str:
    """What the grounded reward's score is, for axis labels (meta.reward_decoding)."""
    return SCORE_LABELS[cfg.meta.reward_decoding]


def summary_frame(summary: dict):
    """A stage's summary dict as a two-column table (nested keys dotted, numbers rounded), not a raw dict."""
    import pandas as pd

    def rows(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from rows(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", (f"{v:.4g}" if isinstance(v, float) else v)

    return pd.DataFrame(list(rows(summary)), columns=["quantity", "value"]).set_index("quantity")


def world_notes(cfg, stage: str):
    """The world's own prose for a stage's report (`Task.report_notes`) as Markdown, or a blank line for a world
    that gives none (the reports themselves name no world)."""
    from IPython.display import Markdown

    from ..tasks import make_task

    return Markdown(make_task(cfg.task).report_notes(stage) or "")


def findings_markdown(sentences: list[str]):
    """A report's closing cell: its findings as a Markdown list (every sentence computed from its tables)."""
    from IPython.display import Markdown

    return Markdown("\n".join(f"- {s}" for s in sentences) or "- (no findings: nothing was measured)")


_STAGES_RUNNING: list[tuple[str, contextlib.ExitStack]] = []  # the stage runs in progress in this process


def exclusive(stage: str):
    """Decorator of a stage's `run`: from its `open_run` on, the stage holds `<run dir>/.<stage>.lock`, so a second
    process running the same stage into the same folder stops with a RunDirError instead of writing its rows twice.
    (The lock is taken in `open_run`, after the stage's own input checks, so a refused stage creates nothing.)"""
    def deco(fn):
        @functools.wraps(fn)
        def run(cfg, *args, **kwargs):
            with contextlib.ExitStack() as stack:
                _STAGES_RUNNING.append((stage, stack))
                try:
                    return fn(cfg, *args, **kwargs)
                finally:
                    _STAGES_RUNNING.pop()
        return run
    return deco


def open_run(cfg) -> RunLayout:
    """Create the run directory (a writable folder, checked) and record the resolved config and versions (a
    stage's files create their folders); inside an `exclusive` stage, take its lock first."""
    check_writable(cfg.run_dir)
    if _STAGES_RUNNING:
        stage, stack = _STAGES_RUNNING[-1]
        if not getattr(stack, "locked", False):
            stack.enter_context(run_lock(cfg.run_dir, stage))
            stack.locked = True
    if cfg.run_dir.exists():
        remove_stale_tmp(cfg.run_dir)  # left by a writer killed mid-write
    return cfg.layout.prepare(cfg)


def load(cfg):
    """(policy, task) for a config, the task bound to the policy's tokenizer. The LoRA initialisation is part of
    the base model: one draw (role lora_init) shared by every student and teacher of the run."""
    policy, task = load_policy(cfg.model, seed=derive(cfg.seed, "model", "lora_init")), make_task(cfg.task)
    task.bind_tokenizer(policy.tokenizer)
    return policy, task


def save_problems(path, problems: list[Problem]) -> None:
    write_json(path, [{"id": p.id, "question": p.question, "answer": p.answer, "level": p.level, "meta": p.meta}
                      for p in problems])


def load_problems(path) -> list[Problem]:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run the earlier stage first (soar-lite run PARAMS --only probe)")
    return [Problem(r["id"], r["question"], r["answer"], r.get("level", ""), r.get("meta", {})) for r in read_json(path)]


def hard_sets(cfg) -> tuple[list[Problem], list[Problem]]:
    """(hard-train, hard-test) as the probe wrote them."""
    layout = cfg.layout
    return load_problems(layout.hard_train), load_problems(layout.hard_test)


def teacher_questions(cfg, policy, task, checkpoint: Path | None, base: Snapshot, n: int, *, stage: str,
                      draw: int, prompt: str | None = None) -> list[QAPair]:
    """`n` format-valid QA pairs from one teacher: the untrained model (`checkpoint` None) or a meta-trained
    teacher's adapter, from the teacher prompt or `prompt`. The sampling seed depends on (stage, draw) only, so the
    base, grounded and intrinsic teachers are compared on common random numbers. Leaves `policy` holding `base`."""
    restore(policy, base if checkpoint is None else load_snapshot(checkpoint))
    pairs = sample_qa_pairs(policy, task, n, stream=lambda r: (stream_key("teacher_draw", stage, draw, r),
                                                               derive(cfg.seed, stage, "teacher_questions", draw, r)),
                            batch_size=cfg.model.gen_batch_size, prompt=prompt,
                            turns=1 if prompt is not None else cfg.meta.teacher_turns).pairs
    restore(policy, base)
    return pairs


def notebook_setup(params_path: str, overrides: list[str], online: bool = False, stage: str | None = None,
                   injected: dict | None = None):
    """A report's set-up: hub access (off unless `online`, SOAR_LITE_ONLINE=1 -- `soar-lite run --online` -- or on
    Colab), the params loaded strictly, the banner and the backend line printed. `injected`: the names papermill
    added after the parameters cell (`papermill NB OUT -f params.yaml` injects a params file's sections, one
    variable each): when there are any, they are the params (`config.load_config_sections`) and `params_path` is
    not read; a name that is neither a notebook parameter nor a section is one error. With `stage`, the report's
    provenance -- the commit it is rendered from (and whether the checkout had uncommitted changes), the params file
    (relative), its hash with the overrides, the start time -- is printed and recorded in provenance/<stage>.json.
    Returns (cfg, layout)."""
    import os
    import sys
    import warnings

    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm in a kernel without ipywidgets
    warnings.formatwarning = _warning_without_path  # a rendered report names no folder of this machine
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if online or os.environ.get("SOAR_LITE_ONLINE") or "google.colab" in sys.modules:
        os.environ["SOAR_LITE_ONLINE"] = "1"  # models and data may come from the hub
    else:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from ..config import load_config, load_config_sections
    from ..models import backend_line

    overrides = as_overrides(overrides)
    sections = {k: v for k, v in (injected or {}).items() if k not in NOTEBOOK_PARAMETERS}
    if sections:  # papermill -f params.yaml: the file's sections arrived as variables
        cfg = load_config_sections(sections, overrides, "papermill -f (the injected params sections)")
    else:
        cfg = load_config(params_path, overrides)  # a shipped name works without this repository (Colab)
    print(banner(cfg))
    if stage is not None:
        print(provenance_line(cfg, stage, params_path, overrides, sections))
        try:  # every report links back to its run's index page (written beside it by soar-lite run / soar-lite index)
            from IPython import get_ipython
            from IPython.display import Markdown, display

            if get_ipython() is not None:
                display(Markdown("[← the run's index: every report, the paper's tables and figures, the verdicts]"
                                 "(index.html)"))
        except ImportError:
            pass
    print(f"torch {torch.__version__}; " + backend_line(cfg.model.backend))
    return cfg, cfg.layout


def as_overrides(overrides) -> list[str]:
    """The `overrides` parameter as a list: papermill's `-p overrides X` passes a string -- one 'key=value', or a
    YAML list written as text ('[a=1, b=2]') --, `-y` and `soar-lite run` a list."""
    import yaml

    if isinstance(overrides, str):
        text = overrides.strip()
        parsed = yaml.safe_load(text) if text.startswith("[") else [text] if text else []
        if not isinstance(parsed, list):
            raise ValueError(f"overrides: expected key=value or a list of them, got {overrides!r}")
        return [str(x) for x in parsed]
    return list(overrides or [])


NOTEBOOK_PARAMETERS = ("params_path", "overrides", "resume", "install_spec", "online")  # every report's parameters cell


def _warning_without_path(message, category, filename, lineno, line=None) -> str:
    """A warning as a report prints it: the file's name, not its folder (a rendered report is committed)."""
    return f"{os.path.basename(str(filename))}:{lineno}: {category.__name__}: {message}\n"


def display_path(path) -> str:
    """A path as a report may show it: relative to the working directory when inside it, the file name of a shipped
    params file, else as given (never made absolute here)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        pass
    from ..config import shipped_params

    shipped = shipped_params()
    if path.stem in shipped and path.resolve() == Path(shipped[path.stem]).resolve():
        return path.stem
    return str(path)


# params that never change what a trained student computes (a student's cache key leaves them out): what a run is
# called and where it writes, how it is run, and which stages it runs
NOT_STUDENT_INPUTS = ("name", "results_dir", "description", "deviations", "executor", "tracking", "stages",
                      "world_check")


def input_digest(cfg, leave_out: dict[str, tuple | None], payload: tuple, files: list[Path]) -> str:
    """sha256 (first 16 hex digits) of what one saved job depends on: the params less NOT_STUDENT_INPUTS and less
    what `leave_out` names (per section: those keys, or None: the whole section; with its folders as the folders they name, wherever the run was started
    from), the job's own `payload` (JSON), and the bytes of every file it reads (a checkpoint by its tensors,
    `snapshot_digest`, not its archive bytes; a missing file as missing)."""
    import hashlib
    import json

    from ..config import canonical_locations, to_dict
    from ..models import snapshot_digest

    params = {k: v for k, v in canonical_locations(to_dict(cfg)).items() if k not in NOT_STUDENT_INPUTS}
    for section, keys in leave_out.items():
        if keys is None:
            params.pop(section, None)
        else:
            params[section] = {k: v for k, v in params[section].items() if k not in keys}
    h = hashlib.sha256(json.dumps([params, *payload], sort_keys=True, default=str).encode())
    for f in files:
        h.update(b"\0" + (snapshot_digest(f).encode() if f.suffix == ".pt" and f.exists()
                          else f.read_bytes() if f.exists() else b"missing"))
    return h.hexdigest()[:16]


def saved_result(path: Path, key: str, problem, log=None, redo: str = "computed again"):
    """A finished job's result saved as {"key", "result"} (by a killed or finished render of this run, in this
    session or another), if its key matches and `problem(result)` finds nothing malformed; None otherwise -- made
    with another key silently (that is what a key is for), a damaged file named in the log (then `redo`)."""
    import json

    if not path.exists():
        return None
    try:
        blob = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as e:
        why = f"not readable JSON ({type(e).__name__})"
    else:
        if not isinstance(blob, dict) or "key" not in blob:
            why = "not a saved result"
        elif blob.get("key") != key:
            return None
        else:
            why = problem(blob.get("result"))
    if why is not None:
        if log is not None:
            log(f"{display_path(path)}: damaged ({why}): {redo}")
        return None
    return blob["result"]


def params_fingerprint(params_path, overrides) -> str:
    """sha256 (first 12 hex digits) of the params file's bytes (and of every file its `extends:` chain names) and
    the overrides: two reports with the same value ran the same params."""
    import hashlib

    from ..config import extended_params, read_params, resolve_params

    path = resolve_params(params_path)
    h = hashlib.sha256(path.read_bytes())
    for _ in range(32):  # the chain (read_params_tree refuses cycles before any report runs)
        parent = read_params(path).get("extends")
        if parent is None:
            break
        path = extended_params(path, parent)
        h.update(b"\0" + path.read_bytes())
    for ov in overrides or []:
        h.update(b"\0" + str(ov).encode())
    return h.hexdigest()[:12]


def provenance(params_path: str, overrides: list[str], sections: dict | None = None) -> dict:
    """Where a report comes from: the commit it is rendered from (and whether the checkout had uncommitted changes),
    the params file as a report may show it (or, for `papermill -f`, the injected sections), its hash with the
    overrides, and the time."""
    import datetime
    import hashlib
    import json

    from ..rundir import git_revision

    rev, dirty = git_revision()
    if sections:
        text = json.dumps([sections, list(overrides)], sort_keys=True, default=str)
        shown, sha = "papermill -f (injected sections)", hashlib.sha256(text.encode()).hexdigest()[:12]
    else:
        shown, sha = display_path(params_path), params_fingerprint(params_path, overrides)
    return {"commit": rev, "uncommitted_changes": dirty, "params": shown,
            "params_sha256": sha, "overrides": list(overrides),
            "started": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")}


def provenance_line(cfg, stage: str, params_path: str, overrides: list[str], sections: dict | None = None) -> str:
    """One line for a report's banner (`soar-lite run` records the same in provenance/<stage>.json)."""
    p = provenance(params_path, overrides, sections)
    commit = f"commit {p['commit']}" + (" with uncommitted changes" if p["uncommitted_changes"] else "") \
        if p["commit"] else "no git checkout"
    return (f"report {stage}: rendered from {commit}, params {p['params']} (sha256 {p['params_sha256']}"
            f"{', overrides ' + ' '.join(overrides) if overrides else ''}), started {p['started']}")


def scale_label(cfg) -> str:
    """'paper scale' for a paper benchmark with the paper's model, else 'toy' (the tiny world, a small model, any world
    of one's own): every verdict carries it (reports 03 and 04), so a toy verdict is never read as the paper's scale."""
    from ..tasks import make_task

    paper_models = ("meta-llama/Llama-3.2-3B-Instruct", "meta-llama/Llama-3.1-8B-Instruct")
    return "paper scale" if make_task(cfg.task).paper_world and cfg.model.path in paper_models else "toy"


def is_number(x, lo: float = float("-inf"), hi: float = float("inf")) -> bool:
    """A finite int or float (never a bool) in [lo, hi]: what a saved result's numeric field must be to be read back
    (evaluate's `student_problem`, analyze's `ablation_row_problem`)."""
    import math

    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and lo <= x <= hi


def pass_at_k_row_problem(row, numbers: tuple[str, ...]) -> str | None:
    """What is malformed in one saved pass@k row (None when well formed): a mapping with a method name, `numbers`
    finite, k >= 1 and pass_at_k in [0, 1]."""
    if not isinstance(row, dict) or not isinstance(row.get("method"), str) or \
            not all(is_number(row.get(c)) for c in numbers) or not is_number(row.get("k"), 1) or \
            not is_number(row.get("pass_at_k"), 0, 1):
        return f"malformed ({str(row)[:80]})"
    return None
