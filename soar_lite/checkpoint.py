"""A meta-training run's checkpoints, beside its run layout (`rundir.MetaLayout`): what a resume may continue, and
the step's files written and read so that a kill at any point leaves a consistent run.

- `check_meta_dir`: "fresh" or "resume", or a RunDirError, decided before anything is written;
- `save_step`: the step's tensors under step-stamped names, then state.json (atomic) naming them -- that write
  commits the step --, then older stamps dropped, then stable copies for readers (the evaluation samples the trained
  teacher from teacher.pt);
- `load_step`: the last committed step back (state dict, teacher adapter, baseline adapter, optimizer state), every
  file checked and named when it is missing or corrupt; the optimizer loads with weights_only=True.
The randomness needs no checkpoint: every draw's seed derives from (run seed, role, step, ...), so the step number
is the RNG state (seeds.py).
"""
from __future__ import annotations

import json

from .config import resume_differences
from .models import Snapshot, load_snapshot, save_snapshot
from .rundir import MetaLayout, RunDirError, atomic_write, read_checked, write_json


def check_meta_dir(cfg, paths: MetaLayout, resume: bool) -> str:
    """What a meta-training run into `paths` will do -- "fresh" or "resume" -- or a RunDirError, decided before
    anything is written: a fresh run refuses a folder that holds checkpoints; a resume refuses checkpoints without
    their state.json (deleted or never committed: the step they hold is unknown), a state.json that cannot be
    read, and a config whose values differ from those the checkpoints were made with (each named)."""
    stamped = paths.stamped_files()
    if not resume:
        if paths.state.exists() or stamped:
            raise RunDirError(f"{paths.dir} holds a meta-training run: pass --resume (resume=True) to continue it, or "
                              f"use another name (-o name=...)")
        return "fresh"
    if not paths.state.exists():
        if stamped:
            raise RunDirError(f"{paths.state} is missing but {paths.checkpoints} holds checkpoints "
                              f"({', '.join(f.name for f in stamped[:3])}): which step they hold is unknown; restore "
                              f"state.json or delete {paths.dir} to start over")
        return "fresh"  # killed before its first checkpoint: nothing to continue
    st = read_checked(paths.state, lambda f: json.loads(f.read_text()), "the last checkpoint's state")
    if not isinstance(st, dict) or not isinstance(st.get("files"), dict):
        raise RunDirError(f"{paths.state}: not a checkpoint state; restore it or delete {paths.dir} to start over")
    if paths.recorded_config.exists():
        recorded = read_checked(paths.recorded_config, lambda f: json.loads(f.read_text()), "the recorded config")
        diff = resume_differences(recorded, cfg)
        if diff:
            raise RunDirError(f"cannot resume {paths.dir}: its checkpoints were made with other values ({'; '.join(diff)}); "
                              f"set them back, or use another name (-o name=...) for a new run")
    return "resume"


def save_step(paths: MetaLayout, step: int, state: dict, teacher: Snapshot, baseline: Snapshot, optimizer_state: dict,
              keep_teacher: bool = False) -> None:
    """Commit `step`: stamped tensors, then state.json naming them (atomic), then the old stamps dropped, then the
    stable copies (teacher.pt, baseline_student.pt; `keep_teacher`: also teacher_step<step>.pt)."""
    import torch

    files = {kind: paths.stamped(kind, step).name for kind in ("teacher", "baseline_student", "teacher_opt")}
    save_snapshot(teacher, paths.stamped("teacher", step))
    save_snapshot(baseline, paths.stamped("baseline_student", step))
    atomic_write(paths.stamped("teacher_opt", step), lambda tmp: torch.save(optimizer_state, tmp))
    write_json(paths.state, {**state, "files": files})  # commits the step
    for f in paths.stamped_files():
        if f.name not in files.values():
            f.unlink(missing_ok=True)
    save_snapshot(teacher, paths.teacher)
    save_snapshot(baseline, paths.baseline)
    if keep_teacher:  # e.g. the paper's HARP teacher at step 170 (meta.teacher_snapshots)
        save_snapshot(teacher, paths.teacher_at(step))


def load_step(paths: MetaLayout) -> tuple[dict, Snapshot, Snapshot, dict]:
    """(state without its file names, teacher adapter, baseline adapter, optimizer state) of the last committed step;
    a state.json that is not one, or a missing or corrupt file, is a RunDirError naming it."""
    import torch

    st = read_checked(paths.state, lambda f: json.loads(f.read_text()), "the last checkpoint's state")
    if not isinstance(st, dict) or not isinstance(st.get("files"), dict):
        raise RunDirError(f"{paths.state}: not a checkpoint state; restore it or delete {paths.dir} to start over")
    files = st.pop("files")
    try:
        teacher = read_checked(paths.checkpoints / files["teacher"], load_snapshot, "the teacher")
        baseline = read_checked(paths.checkpoints / files["baseline_student"], load_snapshot, "the baseline student")
        opt = read_checked(paths.checkpoints / files["teacher_opt"], lambda f: torch.load(f, weights_only=True),
                           "the teacher's optimizer")
    except KeyError as e:
        raise RunDirError(f"{paths.state}: not a checkpoint state (no {e}); restore it or delete {paths.dir} to start "
                          f"over") from None
    return st, teacher, baseline, opt
