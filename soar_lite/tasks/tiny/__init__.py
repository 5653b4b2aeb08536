"""The tiny world, one package: the world (world.py: facts, chains, hard candidates, stepping stones, the pretraining
corpus), the task (task.py: prompts, format check, exact verifier, shaped reward, pools, split groups, and the one
labeller of teacher questions, `TinyTask.exact_label`), the model's pretraining (pretrain.py; `make tiny-model`), the
shipped weights (model/), and the world's own measurements behind report 02 (check.py).
"""
from pathlib import Path

from .task import TinyTask
from .world import COMMON, CONFUSED, KIND_NAMES, SHAKY, UNCERTAIN, UNDEFINED, TinyWorld, TinyWorldSpec

TINY_MODEL_DIR = Path(__file__).resolve().parent / "model"  # the shipped weights (model.path: tiny)

__all__ = ["COMMON", "CONFUSED", "KIND_NAMES", "SHAKY", "TINY_MODEL_DIR", "TinyTask", "TinyWorld", "TinyWorldSpec",
           "UNCERTAIN", "UNDEFINED"]
