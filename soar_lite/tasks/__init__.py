"""Problem sources behind one interface (`base.Task`): the tiny world, the math benchmarks, and worlds of your own.

`task.name` in a params file is a built-in world (tiny, math, harp, olympiadbench) or a world of your own written
as `package.module:Factory` -- a callable that takes the task section (`TaskConfig`: `settings` holds the world's
own settings) and returns a `Task`. It is imported wherever code runs: the notebook kernels, the spawned worker
processes and the Ray actors all build the task from the config they are given (`make_task`), and `task.module_path`
names a folder that is put on the import path of every one of them first (it is added to PYTHONPATH too, which the
kernels and Ray actors inherit). Worlds installed as packages can also announce themselves under the entry-point
group `soar_lite.tasks` (`name = "package.module:Factory"`) and be named by their entry-point name.
`register_task` adds a world to this process only (a notebook's tutorial world), which no other process sees.
Nothing outside `tasks/` names a world.
"""
from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Callable

from .base import Problem, QAPair, Task, shaped_reward


class WorldError(ValueError):
    """task.name (or task.module_path, task.settings) does not give a world; one line saying why."""


def _tiny(task_cfg) -> Task:
    from .tiny import TinyTask, TinyWorld

    return TinyTask(TinyWorld(), task_cfg.student_max_new_tokens, task_cfg.teacher_max_new_tokens)


def _math(task_cfg) -> Task:
    from .math_data import MathTask

    return MathTask(task_cfg.name, task_cfg.data_dir, task_cfg.student_max_new_tokens,
                    task_cfg.teacher_max_new_tokens, task_cfg.verify_timeout_s, task_cfg.teacher_chat_template)


# task.name -> factory(TaskConfig) -> Task
_REGISTRY: dict[str, Callable] = {"tiny": _tiny, "math": _math, "harp": _math, "olympiadbench": _math}
BUILT_IN = tuple(_REGISTRY)


def register_task(name: str, factory: Callable) -> None:
    """Make `task.name: <name>` build `factory(task_cfg)` in this process only (a world defined in a notebook);
    for `soar-lite run`, whose stages run in other processes, name the world as `module:Factory` instead."""
    _REGISTRY[name] = factory


def task_names() -> list[str]:
    return list(_REGISTRY)


def add_module_path(folder: str) -> None:
    """Put `folder` (relative to the working directory) first on this process's import path and on PYTHONPATH, which
    the processes this one starts (notebook kernels, workers, Ray actors) inherit."""
    if not folder:
        return
    path = str(Path(folder).expanduser().resolve())
    if not Path(path).is_dir():
        raise WorldError(f"task.module_path {folder!r} is not a folder")
    if path not in sys.path:
        sys.path.insert(0, path)
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    if path not in parts:
        os.environ["PYTHONPATH"] = os.pathsep.join([path, *parts])


def _entry_point(name: str) -> str | None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="soar_lite.tasks"):
        if ep.name == name:
            return ep.value
    return None


def world_factory(name: str, module_path: str = "") -> Callable:
    """The factory a task name stands for: built-in or registered here, an entry point of group soar_lite.tasks, or
    `package.module:Factory` imported now (after `module_path` is added to the import path)."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    spec = name if ":" in name else _entry_point(name)
    if spec is None:
        raise WorldError(f"unknown world {name!r}: a built-in name ({', '.join(BUILT_IN)}) or a world of your own as "
                         f"package.module:Factory (with task.module_path for its folder)")
    add_module_path(module_path)
    module, _, attr = spec.partition(":")
    if not module or not attr or not all(part.isidentifier() for part in module.split(".") + [attr]):
        raise WorldError(f"world {name!r}: expected package.module:Factory (Python names on both sides of one ':')")
    try:
        factory = getattr(importlib.import_module(module), attr)
    except ImportError as e:
        where = f"task.module_path {module_path!r}" if module_path else "no task.module_path"
        raise WorldError(f"world {name!r}: cannot import {module!r} ({e}; {where}: is that the folder that holds "
                         f"it?)") from None
    except AttributeError:
        raise WorldError(f"world {name!r}: module {module!r} has no {attr!r}") from None
    except (KeyboardInterrupt, GeneratorExit):
        raise
    except BaseException as e:  # a module that raises, recurses or exits while it is imported: one line, never a stop
        raise WorldError(f"world {name!r}: importing {module!r} failed ({_why(e)})") from None
    if not callable(factory):
        raise WorldError(f"world {name!r}: {attr!r} is not callable (a factory taking the task section)")
    return factory


def make_task(task_cfg) -> Task:
    """Build the task a `TaskConfig` names (its world's factory called with the section)."""
    factory = world_factory(task_cfg.name, getattr(task_cfg, "module_path", ""))
    try:
        task = factory(task_cfg)
    except (ValueError, TypeError, KeyError):
        raise  # a world refusing its settings: config.TaskConfig.check names `task.settings`
    except (KeyboardInterrupt, GeneratorExit):
        raise
    except BaseException as e:  # RuntimeError, RecursionError, SystemExit, ...: one line naming the world
        raise WorldError(f"world {task_cfg.name!r}: its factory failed ({_why(e)})") from None
    if not isinstance(task, Task):
        raise WorldError(f"world {task_cfg.name!r}: its factory returned {type(task).__name__}, not a soar_lite Task")
    missing = task.missing_hooks()
    if missing:
        raise WorldError(f"world {task_cfg.name!r}: {type(task).__name__} does not define the required hook"
                         f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} (soar_lite.tasks.base.Task says what "
                         f"each must do)")
    return task


def _why(e: BaseException) -> str:
    """One line for an exception a world raised: its type and first line (SystemExit: the exit code)."""
    if isinstance(e, SystemExit):
        return f"SystemExit({e.code!r}): a world must not exit the process"
    if isinstance(e, SyntaxError):
        return f"SyntaxError: {e.msg} ({Path(e.filename or '?').name}, line {e.lineno})"
    first = str(e).splitlines()[0][:200] if str(e) else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__


__all__ = ["Problem", "QAPair", "Task", "WorldError", "make_task", "register_task", "shaped_reward", "task_names",
           "world_factory"]
