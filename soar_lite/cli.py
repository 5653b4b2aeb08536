"""`soar-lite run PARAMS [--only STAGE] [--resume] [-o key=value ...]`: the notebooks through papermill.

Each stage's notebook is executed into `results/<name>/<notebook>.ipynb` and exported to HTML beside it.
The params file is validated first (strictly) so a typo stops the run before anything is written.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
STAGES = {  # in run order: the tiny-world report needs the probe's hard sets
    "probe": "01_probe.ipynb",
    "tiny_world": "00_tiny_world.ipynb",
    "meta_train": "02_meta_train.ipynb",
    "evaluate": "03_evaluate.ipynb",
    "analyze": "04_analyze_questions.ipynb",
}


def stages_for(cfg) -> list[str]:
    """The tiny-world report runs only for the tiny world."""
    return [s for s in STAGES if s != "tiny_world" or cfg.task.name == "tiny"]


def export_html(ipynb: Path) -> Path:
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(ipynb, as_version=4)
    body, _ = HTMLExporter().from_notebook_node(nb)
    out = ipynb.with_suffix(".html")
    out.write_text(body)
    return out


def run_stage(stage: str, params: Path, overrides: list[str], resume: bool, out_dir: Path, notebook_dir: Path) -> Path:
    import papermill as pm

    src = notebook_dir / STAGES[stage]
    if not src.exists():
        raise FileNotFoundError(f"notebook for stage {stage!r} not found: {src}")
    dst = out_dir / STAGES[stage]
    pm.execute_notebook(str(src), str(dst), parameters={"params_path": str(params), "overrides": list(overrides),
                                                         "resume": bool(resume)},
                        kernel_name="python3", progress_bar=False, cwd=os.getcwd())
    export_html(dst)
    return dst


def main(argv=None) -> int:
    from .config import ConfigError, load_config

    ap = argparse.ArgumentParser(prog="soar-lite", description="SOAR reproduction: run the notebooks with papermill")
    sub = ap.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="execute the notebooks for a params file")
    run.add_argument("params", type=Path)
    run.add_argument("--only", action="append", choices=list(STAGES), help="run only this stage (repeatable)")
    run.add_argument("--resume", action="store_true", help="continue a killed meta-training run from its checkpoint")
    run.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                     help="override a params value, e.g. -o meta.outer_steps=2")
    run.add_argument("--notebooks", type=Path, default=NOTEBOOK_DIR)
    args = ap.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1") if not os.environ.get("SOAR_LITE_ONLINE") else None
    try:
        cfg = load_config(args.params, args.override)
    except ConfigError as e:
        print(f"soar-lite: {e}", file=sys.stderr)
        return 2
    stages = args.only or stages_for(cfg)
    out_dir = cfg.run_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    t_all = time.time()
    for i, stage in enumerate(stages, 1):
        t0 = time.time()
        print(f"[{i}/{len(stages)}] {stage}: {STAGES[stage]} -> {out_dir}/", flush=True)
        try:
            run_stage(stage, args.params.resolve(), args.override, args.resume, out_dir, args.notebooks)
        except Exception as e:  # papermill raises PapermillExecutionError with the cell's traceback
            print(f"soar-lite: stage {stage} failed: {str(e).strip().splitlines()[-1] if str(e).strip() else e!r}",
                  file=sys.stderr)
            print(f"soar-lite: the partial notebook is {out_dir / STAGES[stage]}", file=sys.stderr)
            return 1
        print(f"[{i}/{len(stages)}] {stage} done in {time.time() - t0:.0f} s", flush=True)
    print(f"all stages done in {time.time() - t_all:.0f} s; results in {out_dir}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
