"""Shared test set-up: offline hub, the repository path, the tiny model with fresh LoRA adapters, the tiny task."""
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from soar_lite.config import ModelConfig  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
TINY_LORA = ModelConfig(path="tiny", backend="hf", dtype="float32", lora_r=8, lora_alpha=16)


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="module")
def policy():
    """The shipped tiny model with fresh rank-8 LoRA adapters (equal to the base model); tests restore what they change."""
    from soar_lite.models import load_policy

    return load_policy(TINY_LORA, seed=0)


@pytest.fixture(scope="module")
def tiny_task():
    from soar_lite.tasks.tiny import TinyTask, TinyWorld

    return TinyTask(TinyWorld())
