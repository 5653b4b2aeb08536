"""Problem sources behind one interface (`base.Task`): the tiny world and the math benchmarks."""
from __future__ import annotations

from .base import Problem, QAPair, Task, shaped_reward


def make_task(task_cfg) -> Task:
    """Build the task named by a `TaskConfig`."""
    if task_cfg.name == "tiny":
        from .tiny import TinyTask, TinyWorld

        return TinyTask(TinyWorld(), task_cfg.student_max_new_tokens, task_cfg.teacher_max_new_tokens)
    from .math_data import MathTask

    return MathTask(task_cfg.name, task_cfg.data_dir, task_cfg.student_max_new_tokens,
                    task_cfg.teacher_max_new_tokens, task_cfg.verify_timeout_s, task_cfg.teacher_chat_template)


__all__ = ["Problem", "QAPair", "Task", "make_task", "shaped_reward"]
