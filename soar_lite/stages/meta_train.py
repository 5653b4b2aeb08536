"""Stage `meta_train` (notebook 03): Algorithm 1 for each teacher reward in `meta.rewards` — the grounded
SOAR teacher into meta/, the intrinsic (learnability) Intrinsic-T teacher into meta_intrinsic/ (paper §2, §3).
The loop is `soar_lite.soar.MetaTrainer`; this module runs it and reads back what it wrote.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..rundir import read_json, read_jsonl
from ..soar import MetaTrainer
from ..tasks import make_task
from .common import hard_sets, open_run

# evaluation's teacher methods -> the meta-trained teacher they sample (None = the untrained model)
TEACHER_REWARD = {"base-t": None, "grounded-t": "grounded", "intrinsic-t": "intrinsic"}


@dataclass
class MetaRun:
    """What one meta-training run wrote (read back from its folder, so a fresh kernel sees the same)."""

    reward: str  # grounded | intrinsic
    metrics: pd.DataFrame  # one row per outer step (see MetaTrainer._outer_step)
    pq: list[dict]  # Promotion Questions: question, answer, stage, step
    promotions: list[dict]  # step, dataset, student, reward, hard_train_greedy_acc
    initial_hard_train_acc: float | None  # the base student's greedy accuracy on hard-train (stage 0)
    dir: Path
    seconds: float = 0.0  # spent in this session

    def stage_table(self) -> pd.DataFrame:
        """Stage 0 (base student) and each promotion: greedy accuracy of the baseline on all of hard-train (Fig. 6)."""
        rows = [{"stage": 0, "step": 0, "hard_train_greedy_acc": self.initial_hard_train_acc}]
        rows += [{"stage": i + 1, "step": p["step"], "hard_train_greedy_acc": p["hard_train_greedy_acc"]}
                 for i, p in enumerate(self.promotions)]
        return pd.DataFrame(rows)

    def pq_examples(self, n: int = 6) -> dict[int, str]:
        """The first `n` Promotion Questions of each promotion stage, as 'question=answer'."""
        out: dict[int, list[str]] = {}
        for r in self.pq:
            out.setdefault(r["stage"], []).append(f"{r['question']}={r['answer']}")
        return {stage: "  ".join(qs[:n]) for stage, qs in out.items()}


@dataclass
class MetaTrainResult:
    runs: dict[str, MetaRun] = field(default_factory=dict)  # reward -> run

    @property
    def grounded(self) -> MetaRun | None:
        return self.runs.get("grounded")

    @property
    def intrinsic(self) -> MetaRun | None:
        return self.runs.get("intrinsic")


def run(cfg, resume: bool = False, log=print) -> MetaTrainResult:
    """Meta-train one teacher per reward in `meta.rewards`, each resumable from its own checkpoints."""
    layout = open_run(cfg)
    hard_train, _ = hard_sets(cfg)
    result = MetaTrainResult()
    for reward in cfg.meta.rewards:
        paths = layout.meta(reward)
        trainer = MetaTrainer(cfg, make_task(cfg.task), hard_train, paths, reward=reward, log=log)
        t0 = time.time()
        trainer.run(resume=resume)
        result.runs[reward] = read(cfg, reward)
        result.runs[reward].seconds = time.time() - t0
    return result


def read(cfg, reward: str = "grounded") -> MetaRun:
    """What meta-training wrote for one teacher (empty frames and lists where it has not run)."""
    p = cfg.layout.meta(reward)
    state = read_json(p.state) if p.state.exists() else {}
    return MetaRun(reward=reward, metrics=pd.DataFrame(read_jsonl(p.metrics)),
                   pq=read_json(p.pq) if p.pq.exists() else [],
                   promotions=read_json(p.promotions) if p.promotions.exists() else [],
                   initial_hard_train_acc=state.get("initial_hard_train_acc"), dir=p.dir)


def trained_teacher_path(cfg, reward: str) -> Path:
    """The checkpoint a trained teacher is sampled from: the grounded teacher at evaluate.teacher_step (paper:
    step 170 for HARP, 200 for MATH), else the last step; Intrinsic-T at its last step ("trained 200 steps", §3)."""
    p = cfg.layout.meta(reward)
    if reward == "grounded" and cfg.evaluate.teacher_step:
        return p.teacher_at(cfg.evaluate.teacher_step)
    return p.teacher
