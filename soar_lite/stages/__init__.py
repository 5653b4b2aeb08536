"""One module per stage, each with `run(cfg) -> <Stage>Result` (a dataclass the notebook reads by attribute).

    probe       fail@k hard sets, split, pass@k per level            (notebook 01_probe)
    tiny_world  the tiny world's own evidence (worlds with a report)  (notebook 02_tiny_world)
    meta_train  Algorithm 1 for each teacher reward                   (notebook 03_meta_train)
    evaluate    every method of Tables 4-6 with fresh students        (notebook 04_evaluate)
    analyze     labels, diversity, the well-posed ablation            (notebook 05_analyze)

`STAGES` is the one vocabulary: the CLI, the notebooks and the run directory use these names, in run order.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Stage:
    name: str
    notebook: str  # file name under notebooks/ (and of the rendered report in the run directory)
    needs: tuple[str, ...]  # stages whose outputs it reads
    title: str = ""  # the report's title (its HTML page's <title>, the run index)
    world_report: bool = False  # runs only for tasks with `world_report`

    def preflight(self, cfg, resume: bool) -> None:
        """The stage's own refusals before anything is written (`preflight(cfg, resume)` in its module, if it has
        one): raised as RunDirError, DataError or FileNotFoundError, one line each."""
        import importlib

        check = getattr(importlib.import_module(f"{__name__}.{self.name}"), "preflight", None)
        if check is not None:
            check(cfg, resume)


STAGES = {s.name: s for s in (
    Stage("probe", "01_probe.ipynb", (), "01 Probe: the fail@k hard sets"),
    Stage("tiny_world", "02_tiny_world.ipynb", ("probe",), "02 The tiny world's own evidence", world_report=True),
    Stage("meta_train", "03_meta_train.ipynb", ("probe",), "03 Meta-training: SOAR's teacher-student loop"),
    Stage("evaluate", "04_evaluate.ipynb", ("probe", "meta_train"), "04 Evaluation: every method with fresh students"),
    Stage("analyze", "05_analyze.ipynb", ("probe", "meta_train"), "05 Analysis: question labels, diversity, the ablation"),
)}
