"""Optional experiment tracking (`tracking: none | trackio | wandb | mlflow`; off by default).

Nothing is sent anywhere unless a params file asks: with `tracking: trackio` (local-first: it writes to a local
database unless told otherwise), `wandb` or `mlflow`, every meta-training row (the scalars of metrics.jsonl) and
every evaluation student's finished pass@k are mirrored to that tracker, under project `soar-lite` and a run named
`<run name>/<stage or meta folder>`. metrics.jsonl and the tables stay the record; the tracker is a live view.
Install one with `pip install 'soar_lite[track]'` (trackio) or the tracker's own package. Trackers are imported
only when named, so the default path never imports them.
"""
from __future__ import annotations

import numbers

TRACKERS = ("trackio", "wandb", "mlflow")


def scalars(row: dict, prefix: str = "") -> dict[str, float]:
    """The numbers of a (nested) metrics row, flattened with '/' (lists, strings and None dropped)."""
    out = {}
    for k, v in row.items():
        if isinstance(v, bool):
            out[prefix + k] = float(v)
        elif isinstance(v, numbers.Number):
            out[prefix + k] = float(v)
        elif isinstance(v, dict):
            out.update(scalars(v, f"{prefix}{k}/"))
    return out


class Tracker:
    """One tracked run: `log(row, step)` mirrors a row's scalars; `close()` ends it. kind 'none' does nothing."""

    def __init__(self, kind: str, project: str, name: str, config: dict | None = None):
        self.kind, self._run = kind, None
        if kind == "trackio":
            import trackio

            self._mod = trackio
            self._run = trackio.init(project=project, name=name, config=config or {})
        elif kind == "wandb":
            import wandb

            self._mod = wandb
            self._run = wandb.init(project=project, name=name, config=config or {}, reinit=True)
        elif kind == "mlflow":
            import mlflow

            self._mod = mlflow
            mlflow.set_experiment(project)
            self._run = mlflow.start_run(run_name=name)

    def log(self, row: dict, step: int | None = None) -> None:
        if self.kind == "none":
            return
        values = scalars(row)
        if self.kind == "mlflow":
            self._mod.log_metrics({k.replace("/", "."): v for k, v in values.items()}, step=step)
        else:
            self._mod.log(values, step=step) if self.kind == "trackio" else self._run.log(values, step=step)

    def close(self) -> None:
        if self.kind == "trackio":
            self._mod.finish()
        elif self.kind == "wandb":
            self._run.finish()
        elif self.kind == "mlflow":
            self._mod.end_run()


def tracker(cfg, name: str) -> Tracker:
    """The params' tracker for one part of a run (a meta-training folder, the evaluation)."""
    return Tracker(cfg.tracking, "soar-lite", f"{cfg.name}/{name}", {"params": cfg.name} if cfg.tracking != "none" else None)
