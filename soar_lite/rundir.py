"""Run directories: every path of a run in one place (`RunLayout`), one atomic write, metrics logs, and the
checks that keep a run directory safe (`check_writable`, `run_lock`, `read_checked`, `RunDirError`).

Layout of `results/<name>/`:
    config.yaml, versions.json     what ran (the resolved config, package versions, git revision)
    tables/*.csv                   machine-readable results
    figures/*.png                  figures the notebooks save
    logs/<stage>.log               `soar-lite run --jobs N`: each stage's output
    NN_<stage>.ipynb, .html        rendered notebooks (NN_<stage>.partial.ipynb while a stage runs, or after it failed)
    .run.lock, .<stage>.lock       held by `soar-lite run` and by each stage while it writes (one writer at a time)
    probe/                         hard_train.json, hard_test.json, first_batch_counts.csv, summary.json
    tiny_world/summary.json
    meta/, meta_intrinsic/         one per meta-trained teacher (`MetaLayout`): metrics.jsonl, pq.json,
                                   promotions.json, checkpoints/ (with config.json: what a resume must match)
    evaluate/                      stops.csv, summary.json, students/ (each finished student: a resumed render
                                   trains only the ones it lacks; <student>.partial.pt: the training state of one
                                   not finished, resumed from)
    analyze/                       labels.csv, summary.json, the judge cache, students/ (each finished ablation
                                   student)
No other module spells a path inside a run directory.
"""
from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import json
import os
import platform
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

PACKAGES = ["soar-lite", "torch", "transformers", "peft", "trl", "papermill", "math-verify", "numpy", "pandas", "unsloth"]


def _file_safe(name: str) -> str:
    """A method or arm name as a file name: letters, digits and -_. kept, anything else as _."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


# ---- the one atomic write -----------------------------------------------------------------------
TMP_NAME = re.compile(r"^.+\.(\d+)\.tmp$")  # `atomic_write`'s own pattern: <name>.<pid>.tmp


def stale_tmp(path: Path) -> bool:
    """Whether `path` is a temporary file or folder this package wrote (`<name>.<pid>.tmp`) whose writer no
    longer runs. Anything else with a .tmp suffix is a user's and never touched."""
    m = TMP_NAME.match(path.name)
    if not m or path.is_symlink():
        return False
    try:
        os.kill(int(m.group(1)), 0)
        return False  # its writer is alive
    except ProcessLookupError:
        return True
    except (PermissionError, OverflowError, ValueError):
        return False


def remove_stale_tmp(folder: Path) -> int:
    """Delete the regular `<name>.<pid>.tmp` files `atomic_write` left under `folder` when its writer was killed
    mid-write (the writer's pid no longer runs); a live writer's file, a folder, a link and any other `.tmp` name
    are left alone. Returns how many were removed."""
    removed = 0
    for tmp in Path(folder).rglob("*.tmp"):
        if tmp.is_file() and stale_tmp(tmp):
            tmp.unlink(missing_ok=True)
            removed += 1
    return removed


def atomic_write(path: Path, write: Callable[[Path], object]) -> Path:
    """`write(tmp)` into a temporary file beside `path`, then rename it over `path`: a reader (or a resumed
    run) sees the old file or the new one, never half of one. The temporary name is per process, because
    stages may run side by side (`--jobs`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def atomic_write_text(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def write_json(path: Path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=1, default=_jsonable))


def write_table(df, path: Path) -> Path:
    """A pandas table as CSV (no index)."""
    return atomic_write(path, lambda tmp: df.to_csv(tmp, index=False))


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def _jsonable(o):
    if dataclasses.is_dataclass(o):
        return dataclasses.asdict(o)
    if hasattr(o, "tolist"):
        return o.tolist()
    return str(o)


def append_jsonl(path: Path, row: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(row, default=_jsonable) + "\n")
        f.flush()
        os.fsync(f.fileno())


def rewrite_jsonl(path: Path, rows: list[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, default=_jsonable) + "\n" for r in rows))


def read_jsonl(path: Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # a torn last line from a killed run: the checkpoint decides what counts
    return rows


# ---- safety: one writer per run directory, checks before anything is written -----------------------
class RunDirError(RuntimeError):
    """A run directory cannot be used as asked; the message (one line) names the path and what to do."""


LOCK_ENV = "SOAR_LITE_RUN_LOCK"  # the run directory a parent `soar-lite run` holds (its stage processes inherit it)


def check_writable(run_dir: Path) -> None:
    """The run directory (or its nearest existing parent) is a writable folder."""
    run_dir = Path(run_dir)
    for p in [run_dir, *run_dir.parents]:
        if p.exists():
            if not p.is_dir():
                raise RunDirError(f"{p} is a file, not a folder: results cannot go to {run_dir} (set results_dir)")
            if not os.access(p, os.W_OK | os.X_OK):
                raise RunDirError(f"{p} is not writable: results cannot go to {run_dir} (set results_dir)")
            return


@contextlib.contextmanager
def run_lock(run_dir: Path, what: str = "run"):
    """Hold `<run_dir>/.<what>.lock` (an advisory flock) while the block runs: a second process that asks for the
    same lock gets a RunDirError naming the holder instead of writing the same files. A process started by the
    holder (`soar-lite run --jobs`, its notebook kernels) inherits it through LOCK_ENV."""
    import fcntl

    run_dir = Path(run_dir).resolve()
    held = os.environ.get(LOCK_ENV, "")
    if what == "run" and held == str(run_dir):
        yield
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / f".{what}.lock"
    f = open(path, "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or "another process"
        f.close()
        raise RunDirError(f"{run_dir} is in use by {holder} ({path.name}): wait for it, or use another name "
                          f"(-o name=...)") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} ({what})")
    f.flush()
    old = os.environ.get(LOCK_ENV)
    if what == "run":
        os.environ[LOCK_ENV] = str(run_dir)
    try:
        yield
    finally:
        if what == "run":
            if old is None:
                os.environ.pop(LOCK_ENV, None)
            else:
                os.environ[LOCK_ENV] = old
        fcntl.flock(f, fcntl.LOCK_UN)
        f.close()


def read_checked(path: Path, load: Callable[[Path], object], what: str):
    """`load(path)`, or a RunDirError naming the file when it is missing or unreadable (corrupt, truncated)."""
    try:
        return load(path)
    except FileNotFoundError:
        raise RunDirError(f"{path}: missing ({what})") from None
    except Exception as e:  # torch, json and zip errors differ by version; the file is what the user needs
        raise RunDirError(f"{path}: cannot be read ({what}): {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                          f" -- the file is corrupt; restore it or delete the run folder to start over") from None


# ---- paths ----------------------------------------------------------------------------------------
def _at(*parts: str) -> property:
    """A fixed path below the layout's folder."""
    return property(lambda self: self.base.joinpath(*parts))


@dataclass(frozen=True)
class MetaLayout:
    """One meta-training run's folder (meta/ for the grounded teacher, meta_intrinsic/ for Intrinsic-T,
    meta_no_promotion/ for Grounded-T without promotion; meta_run1/ ... for further teacher seeds)."""

    base: Path

    dir = _at()
    metrics = _at("metrics.jsonl")  # one row per outer step
    pq = _at("pq.json")  # the Promotion Questions
    promotions = _at("promotions.json")
    checkpoints = _at("checkpoints")
    state = _at("checkpoints", "state.json")  # names the stamped files of the last complete step; written last
    recorded_config = _at("checkpoints", "config.json")  # the values a resume must not change (config.resume_key)
    teacher = _at("checkpoints", "teacher.pt")  # stable copy of the latest teacher (the evaluation samples it)
    baseline = _at("checkpoints", "baseline_student.pt")
    diagnostics = _at("diagnostics.json")  # the world's question diagnostics, trained vs untrained teacher, at the end
    stopped = _at("stopped.json")  # why a run stopped early (no format-valid teacher sample), with the measured rate

    def stamped(self, kind: str, step: int) -> Path:
        """kind in teacher / baseline_student / teacher_opt, stamped with the step it holds."""
        return self.checkpoints / f"{kind}-{step:05d}.pt"

    def stamped_files(self) -> list[Path]:
        return sorted(self.checkpoints.glob("*-[0-9][0-9][0-9][0-9][0-9].pt"))

    def promoted(self, stage: int) -> Path:
        """The baseline student after promotion `stage` (1-based)."""
        return self.checkpoints / f"promoted_{stage}.pt"

    def teacher_at(self, step: int) -> Path:
        """The teacher kept after outer step `step` (meta.teacher_snapshots)."""
        return self.checkpoints / f"teacher_step{step:05d}.pt"


META_DIRS = {"grounded": "meta", "intrinsic": "meta_intrinsic", "grounded-no-promotion": "meta_no_promotion",
             "grounded-paper-grouping": "meta_paper_grouping", "grounded-frozen": "meta_frozen"}
# teacher kind -> folder of its first meta-training run; run i > 0 (another teacher seed) adds "_run<i>"


@dataclass(frozen=True)
class RunLayout:
    base: Path

    def __post_init__(self):
        object.__setattr__(self, "base", Path(self.base))

    root = _at()
    config = _at("config.yaml")  # the resolved config: what ran
    versions = _at("versions.json")
    hard_train = _at("probe", "hard_train.json")
    hard_test = _at("probe", "hard_test.json")
    first_batch_counts = _at("probe", "first_batch_counts.csv")
    stops = _at("evaluate", "stops.csv")
    labels = _at("analyze", "labels.csv")
    judge_cache = _at("analyze", "judge_cache.jsonl")

    def table(self, name: str) -> Path:
        return self.base / "tables" / f"{name}.csv"

    def figure(self, name: str) -> Path:
        return self.base / "figures" / f"{name}.png"

    def log(self, stage: str) -> Path:
        return self.base / "logs" / f"{stage}.log"

    def notebook(self, filename: str) -> Path:
        return self.base / filename

    def partial_notebook(self, filename: str) -> Path:
        """Where papermill writes while a stage runs; renamed over `notebook` only when the stage succeeds, so a
        failed or refused stage never replaces the last good report."""
        return self.base / filename.replace(".ipynb", ".partial.ipynb")

    def provenance(self, stage: str) -> Path:
        """What rendered a stage's report: commit, params and their hash, start and end (`record_provenance`)."""
        return self.base / "provenance" / f"{stage}.json"

    def progress(self, stage: str) -> Path:
        """Folder of a running stage's progress files, one per job (`report_progress`; not committed)."""
        return self.base / "progress" / stage

    def summary(self, stage: str) -> Path:
        """A stage's summary.json in its own folder (probe, tiny_world, evaluate, analyze)."""
        return self.base / stage / "summary.json"

    def evaluate_student(self, method: str, seed: int) -> Path:
        """One finished evaluation student (its result and the key of what it depends on), so that a killed render
        -- in this session or a later one -- trains only the students it lacks (stages/evaluate.py)."""
        return self.base / "evaluate" / "students" / f"{_file_safe(method)}-s{seed}.json"

    def evaluate_student_partial(self, method: str, seed: int) -> Path:
        """The training state of an evaluation student that has not finished (soar_lite.evaluate.save_partial): a
        killed render resumes it from there; deleted once the student's result is kept."""
        return self.base / "evaluate" / "students" / f"{_file_safe(method)}-s{seed}.partial.pt"

    def analyze_student(self, arm: str, seed: int) -> Path:
        """One finished student of the well-posed ablation (its pass@k rows and the key of what it depends on), so
        that a killed analyze -- in this session or a later one -- trains only the students it lacks
        (stages/analyze.py)."""
        return self.base / "analyze" / "students" / f"{_file_safe(arm)}-s{seed}.json"

    def meta(self, teacher: str = "grounded", run: int = 0) -> MetaLayout:
        """One meta-training run: teacher kind (grounded, intrinsic, grounded-no-promotion), teacher seed index."""
        return MetaLayout(self.base / (META_DIRS[teacher] + (f"_run{run}" if run else "")))

    def prepare(self, cfg) -> RunLayout:
        """Create the run directory and record what runs in it (the resolved config and the versions)."""
        for d in (self.base / "tables", self.base / "figures"):
            d.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.config, yaml.safe_dump(dataclasses.asdict(cfg), sort_keys=False))
        write_json(self.versions, versions())
        return self


def git_revision() -> tuple[str | None, bool]:
    """(short commit of the checkout this package runs from, whether it has uncommitted changes to tracked files);
    (None, False) outside a git checkout (a pip install)."""
    here = Path(__file__).parent
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=here,
                             timeout=5).stdout.strip()
        if not rev:
            return None, False
        # the code a report comes from: the package, the notebooks and the params (a render's own outputs under
        # results/ do not make the checkout dirty)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ":/soar_lite",
                                ":/notebooks", ":/params"], capture_output=True, text=True, cwd=here, timeout=10).stdout.strip()
        return rev, bool(dirty)
    except (OSError, subprocess.SubprocessError):
        return None, False


def record_provenance(layout: "RunLayout", stage: str, **fields) -> dict:
    """Merge `fields` into the stage's provenance file and return it."""
    path = layout.provenance(stage)
    old = json.loads(path.read_text()) if path.exists() else {}
    new = {**old, "stage": stage, **fields}
    write_json(path, new)
    return new


PART_TIME = "%Y-%m-%d %H:%M:%S UTC"


def _part_time(t: float) -> str:
    return time.strftime(PART_TIME, time.gmtime(t))


def _part_seconds(text: str) -> float:
    import calendar

    return float(calendar.timegm(time.strptime(text, PART_TIME)))


def start_part(layout: "RunLayout", stage: str, prov: dict, resume: bool, now: float | None = None) -> dict:
    """Open one part of a stage's render in provenance/<stage>.json's `parts` (a long render runs in several
    sittings: `--resume` continues it). A fresh (not --resume) render starts the list anew; an earlier part that
    never finished (killed: the session ended) is closed at its last heartbeat and marked interrupted. Each part
    names its commit, so a run rendered in parts from two commits is seen (report_index)."""
    path = layout.provenance(stage)
    old = read_json(path) if path.exists() and resume else {}
    parts = [dict(p) for p in old.get("parts", [])]
    for p in parts:
        if "finished" not in p:
            p["interrupted"] = True
    now = time.time() if now is None else now
    parts.append({"commit": prov.get("commit"), "uncommitted_changes": prov.get("uncommitted_changes"),
                  "params_sha256": prov.get("params_sha256"), "overrides": list(prov.get("overrides", [])),
                  "resume": bool(resume), "started": _part_time(now), "last_seen": _part_time(now)})
    record = {**old, "stage": stage, "parts": parts}
    write_json(path, record)
    return record


def beat_part(layout: "RunLayout", stage: str, now: float | None = None, finished: bool = False) -> dict:
    """The open part's heartbeat (`last_seen`, every minute while the stage runs: where an interrupted part ended),
    or its end (`finished`)."""
    path = layout.provenance(stage)
    record = read_json(path)
    part = record["parts"][-1]
    part["last_seen"] = _part_time(time.time() if now is None else now)
    if finished:
        part["finished"] = part["last_seen"]
    write_json(path, record)
    return record


def parts_summary(parts: list[dict]) -> dict:
    """Wall seconds of a stage's render summed over its parts (each from its start to its end, or to its last
    heartbeat when it was interrupted), the seconds between parts (paused: nothing of the stage ran), and the
    count."""
    spans = [(_part_seconds(p["started"]), _part_seconds(p.get("finished") or p["last_seen"])) for p in parts]
    paused = sum(max(0.0, b0 - a1) for (_, a1), (b0, _) in zip(spans, spans[1:]))
    return {"parts": len(parts), "seconds": round(sum(b - a for a, b in spans), 1), "paused_seconds": round(paused, 1),
            "interrupted": sum(bool(p.get("interrupted")) for p in parts)}


class PartHeartbeat:
    """`with PartHeartbeat(layout, stage):` beats the open part every `every` seconds on a daemon thread."""

    def __init__(self, layout: "RunLayout", stage: str, every: float = 60.0):
        import threading

        self.layout, self.stage, self.every = layout, stage, every
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self.stop.wait(self.every):
            try:
                beat_part(self.layout, self.stage)
            except (OSError, ValueError, KeyError, IndexError):  # best effort: a heartbeat is never an error
                pass

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        return False


def report_progress(layout: "RunLayout", stage: str, job: str, done: int, total: int, unit: str) -> None:
    """One job's progress in its stage's own unit (outer steps, students, problems), read by `soar-lite run`'s
    progress lines (work done / total and an ETA); best effort, never an error."""
    try:
        write_json(layout.progress(stage) / f"{job}.json", {"done": done, "total": total, "unit": unit})
    except OSError:
        pass


def versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = None
    rev, dirty = git_revision()
    out["git"] = rev + ("+uncommitted" if dirty else "") if rev else None
    return out
