"""What every stage shares: the report banner, opening the run directory, loading the policy and task,
the hard sets the probe wrote, and the teachers' question sets (one helper, so evaluation and analysis
sample identical sets with identical seeds)."""
from __future__ import annotations

from ..models import Snapshot, load_policy, load_snapshot, restore
from ..rundir import RunLayout, read_json, write_json
from ..soar import sample_questions
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


def open_run(cfg) -> RunLayout:
    """Create the run directory and record the resolved config and versions (a stage's files create their folders)."""
    return cfg.layout.prepare(cfg)


def load(cfg, seed: int | None = None):
    """(policy, task) for a config, the task bound to the policy's tokenizer."""
    policy, task = load_policy(cfg.model, seed=cfg.seed if seed is None else seed), make_task(cfg.task)
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


def teacher_question_sets(cfg, policy, task, base: Snapshot, n: int, seed_base: int,
                          seed_trained: int) -> dict[str, list[QAPair]]:
    """`n` format-valid QA pairs from each teacher: the untrained model (base-t, sampled with `seed_base`) and
    the teachers meta-training saved (grounded-t, intrinsic-t, sampled with `seed_trained`); a teacher
    without a checkpoint is absent from the result. Leaves `policy` holding `base`."""
    from .meta_train import TEACHER_REWARD, trained_teacher_path

    sets = {}
    for name, reward in TEACHER_REWARD.items():
        ckpt = None if reward is None else trained_teacher_path(cfg, reward)
        if ckpt is not None and not ckpt.exists():
            latest = cfg.layout.meta(reward).teacher
            if ckpt != latest and latest.exists():
                raise FileNotFoundError(f"{ckpt} is missing: the run has not reached evaluate.teacher_step="
                                        f"{cfg.evaluate.teacher_step} (or was trained without it in meta.teacher_snapshots)")
            continue
        restore(policy, base if ckpt is None else load_snapshot(ckpt))
        sets[name] = sample_questions(policy, task, n, seed_base if ckpt is None else seed_trained,
                                      batch_size=cfg.model.gen_batch_size)
    restore(policy, base)
    return sets


def notebook_setup(params_path: str, overrides: list[str], online: bool = False):
    """A report's set-up: hub access (off unless `online` or on Colab), the params loaded strictly, the banner
    and the backend line printed. Returns (cfg, layout)."""
    import os
    import sys
    import warnings

    warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm in a kernel without ipywidgets
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if online or "google.colab" in sys.modules:
        os.environ["SOAR_LITE_ONLINE"] = "1"  # models and data may come from the hub
    else:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from ..config import load_config
    from ..models import backend_line

    cfg = load_config(params_path, overrides)  # a shipped name works without this repository (Colab)
    print(banner(cfg))
    print(f"torch {torch.__version__}; " + backend_line(cfg.model.backend))
    return cfg, cfg.layout
