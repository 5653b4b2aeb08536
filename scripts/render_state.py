"""Carry a long render across machines that do not keep their disk (a Colab runtime, a lent machine, a session that
ends): `save` copies what `soar-lite run PARAMS --resume` needs from a stopped run directory into a folder you can
commit or upload; `restore` puts it back into a run directory, and the resumed render goes on from there.

    python scripts/render_state.py save results/tiny-full renders/tiny-full      # after the render is stopped
    python scripts/render_state.py restore renders/tiny-full results/tiny-full   # on the next machine, then --resume

What is carried: every file of the run directory (the reports, tables, provenance with its parts, each meta-training
run's checkpoints, each finished evaluation student and the training state of each unfinished one, the judge cache)
except what a resume writes anew: `logs/`, `progress/`, lock files, `<name>.<pid>.tmp` files and the partial notebook
of a stage that was stopped mid-way (the resumed stage renders its notebook again), and, once meta-training has
finished (`provenance/meta_train.json` says when), the teacher optimizer states in its runs' checkpoints
(`teacher_opt-*.pt`, 3 MB each: only a meta-training resume reads them; evaluate and analyze read the adapters).
`save` mirrors: a carried file in DEST that the run no longer has is deleted, so that DEST holds exactly the run's
state (unchanged files keep their bytes, so git stores them once).

`save` refuses a run directory that a live `soar-lite run` holds (its `.run.lock`): a copy taken while stages write
could pair one file's new state with another's old one. Stop the render (kill its process groups), then save.
"""
from __future__ import annotations

import argparse
import filecmp
import json
import shutil
import sys
from pathlib import Path

from soar_lite.rundir import RunDirError, run_lock

SKIP_DIRS = {"logs", "progress"}


def meta_train_finished(run_dir: Path) -> bool:
    """Whether the run's meta-training stage has finished (its provenance records the finish)."""
    prov = run_dir / "provenance" / "meta_train.json"
    try:
        return bool(json.loads(prov.read_text()).get("finished"))
    except (OSError, ValueError, AttributeError):
        return False


def carried(path: Path, root: Path, meta_finished: bool = False) -> bool:
    """Whether `path` (a file under `root`) is part of a run's resumable state."""
    rel = path.relative_to(root)
    name = rel.name
    return not (rel.parts[0] in SKIP_DIRS or (name.startswith(".") and name.endswith(".lock"))
                or name.endswith(".tmp") or name.endswith(".partial.ipynb")
                or (meta_finished and rel.parent.name == "checkpoints" and name.startswith("teacher_opt")))


def mirror(src: Path, dest: Path) -> tuple[int, int, int, int]:
    """Make `dest` hold exactly the carried files of `src`; returns (files, bytes, copied, deleted)."""
    done = meta_train_finished(src)
    keep = {p.relative_to(src) for p in src.rglob("*")
            if p.is_file() and not p.is_symlink() and carried(p, src, done)}
    copied = deleted = 0
    if dest.exists():
        for p in sorted(dest.rglob("*"), reverse=True):
            if p.is_file() and carried(p, dest) and p.relative_to(dest) not in keep:
                p.unlink()
                deleted += 1
            elif p.is_dir() and not any(p.iterdir()):
                p.rmdir()
    for rel in sorted(keep):
        s, d = src / rel, dest / rel
        if d.is_file() and filecmp.cmp(s, d, shallow=False):
            continue
        d.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(s, d)
        copied += 1
    return len(keep), sum((src / rel).stat().st_size for rel in keep), copied, deleted


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("action", choices=["save", "restore"])
    ap.add_argument("src", type=Path, help="save: the run directory; restore: the saved state")
    ap.add_argument("dest", type=Path, help="save: the folder to hold the state; restore: the run directory")
    args = ap.parse_args(argv)
    if not args.src.is_dir():
        print(f"render_state: {args.src} is not a folder", file=sys.stderr)
        return 2
    if args.action == "restore" and args.dest.exists() and any(args.dest.iterdir()):
        print(f"render_state: {args.dest} is not empty: restore into a fresh run directory (move it away first)",
              file=sys.stderr)
        return 2
    run_dir = args.src if args.action == "save" else args.dest
    try:
        with run_lock(run_dir):
            files, size, copied, deleted = mirror(args.src, args.dest)
    except RunDirError as e:
        print(f"render_state: {e}", file=sys.stderr)
        return 2
    print(f"{args.action}: {files} files, {size / 2**20:.1f} MiB in {args.dest} ({copied} copied, {deleted} deleted)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
