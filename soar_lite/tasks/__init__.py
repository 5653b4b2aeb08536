"""Problem sources behind one interface (`base.Task`): the tiny world and the math benchmarks.

A world is one module here with a `Task` subclass, registered below by name (or, from your own code,
with `register_task`). Nothing outside `tasks/` names a world.
"""
from __future__ import annotations

from typing import Callable

from .base import Problem, QAPair, Task, shaped_reward


def _tiny(task_cfg) -> Task:
    from .tiny import TinyTask, TinyWorld

    return TinyTask(TinyWorld(), task_cfg.student_max_new_tokens, task_cfg.teacher_max_new_tokens)


def _math(task_cfg) -> Task:
    from .math_data import MathTask

    return MathTask(task_cfg.name, task_cfg.data_dir, task_cfg.student_max_new_tokens,
                    task_cfg.teacher_max_new_tokens, task_cfg.verify_timeout_s, task_cfg.teacher_chat_template)


# task.name -> factory(TaskConfig) -> Task
_REGISTRY: dict[str, Callable] = {"tiny": _tiny, "math": _math, "harp": _math, "olympiadbench": _math}


def register_task(name: str, factory: Callable) -> None:
    """Make `task.name: <name>` build `factory(task_cfg)` (a third world)."""
    _REGISTRY[name] = factory


def task_names() -> list[str]:
    return list(_REGISTRY)


def make_task(task_cfg) -> Task:
    """Build the task named by a `TaskConfig`."""
    return _REGISTRY[task_cfg.name](task_cfg)


__all__ = ["Problem", "QAPair", "Task", "make_task", "register_task", "shaped_reward", "task_names"]
