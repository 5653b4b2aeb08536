"""Run directories: resolved config, package versions, git revision, metrics logs, atomic writes.

Layout of `results/<name>/`:
    config.yaml, versions.json     what ran
    tables/*.csv                   machine-readable results
    figures/*.png                  figures the notebooks save
    <stage>/...                    a stage's artefacts (hard sets, checkpoints, metrics.jsonl)
    *.ipynb, *.html                rendered notebooks
"""
from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import os
import platform
import subprocess
from pathlib import Path

import yaml

PACKAGES = ["soar-lite", "torch", "transformers", "peft", "trl", "papermill", "math-verify", "numpy", "pandas", "unsloth"]


def atomic_write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: stages may run side by side (--jobs)
    tmp.write_text(text)
    os.replace(tmp, path)


def write_json(path: Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=1, default=_jsonable))


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


def versions() -> dict:
    out = {"python": platform.python_version()}
    for p in PACKAGES:
        try:
            out[p] = importlib.metadata.version(p)
        except importlib.metadata.PackageNotFoundError:
            out[p] = None
    try:
        out["git"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                    cwd=Path(__file__).parent, timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        out["git"] = None
    return out


def prepare(cfg) -> Path:
    """Create the run directory and record what runs in it."""
    from .config import to_dict

    d = cfg.run_dir
    (d / "tables").mkdir(parents=True, exist_ok=True)
    (d / "figures").mkdir(parents=True, exist_ok=True)
    atomic_write_text(d / "config.yaml", yaml.safe_dump(to_dict(cfg), sort_keys=False))
    write_json(d / "versions.json", versions())
    return d
