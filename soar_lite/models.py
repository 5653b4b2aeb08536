"""Load a causal LM + tokenizer, wrap it with LoRA, snapshot and restore adapter weights in memory.

Follows the paper: teacher and student start from the same model (§1.1).
Deviation: LoRA adapters instead of full fine-tuning (the paper's type of fine-tuning is not stated;
INFERRED full). LoRA lets a student copy be an in-memory snapshot of the adapter weights, so the g*r
inner-loop students of a step cost a tensor copy each instead of a model reload.

Backend choice (`auto|unsloth|hf`) is made by `choose_backend` *before* transformers/peft are imported,
because unsloth must be imported first (ENVIRONMENT.md). The CPU path never imports unsloth.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

TINY_MODEL_DIR = Path(__file__).parent / "tiny" / "model"


def resolve_model_path(path: str) -> str:
    """'tiny' -> the shipped tiny model; a local folder stays a folder; anything else is a hub id."""
    if path == "tiny":
        return str(TINY_MODEL_DIR)
    return path


def choose_backend(requested: str) -> str:
    """Decide the training backend without importing transformers/peft.

    auto: unsloth when CUDA is available and unsloth is installed, else hf.
    unsloth: unsloth, or an error saying why not. hf: peft on plain transformers.
    """
    if requested not in ("auto", "unsloth", "hf"):
        raise ValueError(f"model.backend must be auto, unsloth or hf, not {requested!r}")
    if requested == "hf":
        return "hf"
    import torch

    has_cuda = torch.cuda.is_available()
    has_unsloth = importlib.util.find_spec("unsloth") is not None
    if requested == "unsloth":
        if not has_cuda:
            raise RuntimeError("model.backend=unsloth needs CUDA, and none is available; use backend: auto or hf")
        if not has_unsloth:
            raise RuntimeError("model.backend=unsloth but unsloth is not installed (pip install 'soar-lite[gpu]')")
        return "unsloth"
    if has_cuda and has_unsloth:
        if any(m in sys.modules for m in ("transformers", "peft", "trl")):
            # unsloth patches must come first; too late in this process
            print("[soar_lite] unsloth available but transformers was imported first: using hf backend")
            return "hf"
        return "unsloth"
    return "hf"


@dataclass
class Policy:
    """A LoRA-wrapped causal LM with its tokenizer; `backend` says which path loaded it."""

    model: object
    tokenizer: object
    backend: str
    device: str

    def trainable(self):
        return [p for p in self.model.parameters() if p.requires_grad]


def load_policy(cfg, seed: int = 0) -> Policy:
    """Load cfg.model (a `ModelConfig`) with fresh LoRA adapters (B = 0, so it equals the base)."""
    import torch

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    backend = choose_backend(cfg.backend)
    path = resolve_model_path(cfg.path)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(cfg.threads)
    dtype = getattr(torch, cfg.dtype) if device == "cuda" else torch.float32
    torch.manual_seed(seed)
    if backend == "unsloth":
        return _load_unsloth(cfg, path, dtype)
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    base = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules), bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(base, lora)
    model.eval()
    return Policy(model=model, tokenizer=tokenizer, backend="hf", device=device)


def _load_unsloth(cfg, path: str, dtype) -> Policy:  # pragma: no cover - GPU only
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(model_name=path, dtype=dtype, load_in_4bit=False,
                                                         max_seq_length=4096)
    model = FastLanguageModel.get_peft_model(model, r=cfg.lora_r, lora_alpha=cfg.lora_alpha,
                                             lora_dropout=cfg.lora_dropout, target_modules=list(cfg.target_modules),
                                             bias="none", use_gradient_checkpointing=False)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return Policy(model=model, tokenizer=tokenizer, backend="unsloth", device="cuda")


# ---- adapter snapshots ------------------------------------------------------------------------
Snapshot = dict  # parameter name -> detached tensor copy


def snapshot(policy: Policy) -> Snapshot:
    """Copy of every trainable (adapter) tensor: a student checkpoint in memory."""
    return {n: p.detach().clone() for n, p in policy.model.named_parameters() if p.requires_grad}


def restore(policy: Policy, snap: Snapshot) -> None:
    """Load a snapshot back in place (no reload, no new tensors)."""
    import torch

    params = dict(policy.model.named_parameters())
    missing = set(snap) - set(params)
    if missing:
        raise KeyError(f"snapshot has tensors the model lacks: {sorted(missing)[:3]}")
    with torch.no_grad():
        for n, t in snap.items():
            params[n].copy_(t)


def save_snapshot(snap: Snapshot, path: Path) -> None:
    import torch

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(snap, tmp)
    os.replace(tmp, path)


def load_snapshot(path: Path) -> Snapshot:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)
