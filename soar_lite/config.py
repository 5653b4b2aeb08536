"""Typed configuration, one dataclass per stage, loaded strictly from `params/*.yaml`.

Every knob says where its paper default comes from (PAPER.md section / Table 3). The defaults here
are the paper's; `params/tiny.yaml` overrides them for the 2-core CPU world and lists each
deviation in its `deviations:` block, which every rendered notebook prints at its top.

Strict loading: an unknown key, a value of the wrong type or a missing params file raises
`ConfigError` with one line naming it, before anything is written.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """A params file is wrong; the message names the file and the key."""


@dataclass
class ModelConfig:
    path: str = "meta-llama/Llama-3.2-3B-Instruct"  # paper §1.1; "tiny" = the shipped tiny model
    backend: str = "auto"  # auto | unsloth | hf ; auto = unsloth only when CUDA is there and it imports
    dtype: str = "bfloat16"  # float32 on CPU
    lora_r: int = 64  # DEVIATION: the paper fine-tunes all parameters (INFERRED, §1.1); we train LoRA adapters
    lora_alpha: int = 128
    lora_dropout: float = 0.0
    target_modules: list[str] = field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])
    threads: int = 1  # torch threads on CPU (ENVIRONMENT.md: 1 thread avoids 20-40x slowdowns under contention)
    gen_batch_size: int = 256  # rows per generation forward pass
    sampler: str = "auto"  # auto | custom | generate ; auto = generate (unsloth's fast path) on unsloth, else custom
    train_micro_batch: int = 0  # rows per forward/backward in an RLOO step (0 = whole batch); memory only, same gradient
    gradient_checkpointing: bool = False  # trade compute for memory on long rollouts (GPU)
    max_seq_length: int = 2048  # unsloth: longest prompt + completion (teacher/student prompts + 1,024 tokens)


@dataclass
class TaskConfig:
    name: str = "math"  # tiny | math | harp | olympiadbench
    data_dir: str = ""  # "" = the copies vendored in soar_lite/data
    student_max_new_tokens: int = 1024  # Table 3 student max generated tokens
    teacher_max_new_tokens: int = 512  # Table 3 teacher max generated tokens
    verify_timeout_s: float = 5.0  # hard kill of a math-verify call (it can hang, ENVIRONMENT.md)
    teacher_chat_template: bool = True  # teacher prompt as a user turn of the chat template (INFERRED §2.1)


@dataclass
class ProbeConfig:
    pool: str = "test"  # paper §1.2: MATH's pool is the official *test* split
    limit: int = 0  # 0 = the whole pool; >0 = a slice (smoke runs)
    samples: int = 128  # App. B.5: 128 samples per problem
    confirm_samples: int = 128  # a second independent batch must also be 0/128 (winner's-curse guard)
    temperature: float = 1.0  # App. B.5
    test_fraction: float = 0.5  # §1.2: random 50/50 split
    split_seed: int = 0  # not given in the paper: recorded here
    level_pool: str = ""  # pool for the pass@k-per-level table ("" = skip)
    level_samples: int = 32
    level_limit: int = 0


@dataclass
class RLConfig:
    """One RLOO learner (paper §2.3/§2.4, Table 3)."""

    lr: float = 1e-5  # Table 3
    kl_coef: float = 0.001  # Table 3; KL to the initial model (INFERRED)
    warmup_steps: int = 0  # Table 3: teacher 20, student 0 (inner loop) / 20 (evaluation)
    batch_questions: int = 8  # Table 3 student batch 8 (teacher: all g*n rollouts per update)
    group_size: int = 32  # Table 3 student group 32; teacher group = g
    temperature: float = 1.0  # Table 3
    weight_decay: float = 0.0
    grad_clip: float = 1.0


@dataclass
class MetaConfig:
    """The outer loop, Algorithm 1."""

    outer_steps: int = 200  # §2.3 at most 200 outer steps
    g: int = 4  # datasets per step (teacher RLOO group), Table 3
    n: int = 64  # questions per dataset, Table 3
    r: int = 4  # student repeats per dataset, Table 3
    M: int = 64  # reward questions resampled from hard-train each step, §1.2
    tau: float = 0.01  # promotion threshold, Table 3
    ma_window: int = 3  # moving-average window, Table 3
    inner_steps: int = 10  # §2.4
    inner_steps_per_promotion: int = 5  # §2.4 "+5 after a promotion" (INFERRED 10 -> 15 -> 20)
    max_inner_steps: int = 20
    reward: str = "grounded"  # grounded (SOAR) | intrinsic (learnability, §3 Intrinsic-T)
    reward_decoding: str = "greedy"  # greedy (paper) | sampled | logprob (tiny world: log p of the true chain)
    reward_samples: int = 1  # samples per question when reward_decoding = sampled
    intrinsic_samples: int = 32  # §3: success rate from 32 student samples
    max_teacher_tries: int = 20  # rejection-sampling rounds before giving up with an error
    promote: bool = True  # False = the "no-promotion" ablation
    checkpoint_every: int = 1
    teacher_snapshots: list[int] = field(default_factory=list)  # keep the teacher after these outer steps (§2.3: HARP 170)
    student: RLConfig = field(default_factory=RLConfig)
    teacher: RLConfig = field(default_factory=lambda: RLConfig(warmup_steps=20, batch_questions=2, group_size=4))


@dataclass
class EvalConfig:
    """Fresh-student evaluation (§2.9, App. B.6/B.8)."""

    methods: list[str] = field(default_factory=lambda: ["base-model", "hard-only", "soar-pq", "soar-ps", "grounded-t", "base-t", "intrinsic-t", "curated"])
    seeds: int = 3
    steps: int = 1500  # Table 3 max training steps
    eval_every: int = 50  # not given in the paper (INFERRED)
    samples: int = 32  # §2.9: 32 samples per test problem
    ks: list[int] = field(default_factory=lambda: [1, 4, 8, 16, 32])
    mode: str = "curriculum"  # curriculum (MATH) | mixed (HARP, OlympiadBench), §2.9
    curriculum_steps: int = 64  # Table 3 synthetic warm-up steps
    n_questions: int = 128  # questions sampled from a teacher (Grounded-T, Base-T, Intrinsic-T), §4
    teacher_step: int = 0  # Grounded-T checkpoint: 0 = the last outer step; k = meta.teacher_snapshots' step k (§2.3)
    smooth_window: int = 25  # App. B.8 centred moving average
    slope_fraction: float = 0.15  # App. B.8 15% of the maximum slope
    after_stop_window: int = 200  # Table 4: mean test pass@k over the 200 steps after the stop
    student: RLConfig = field(default_factory=lambda: RLConfig(warmup_steps=20))


@dataclass
class AnalyzeConfig:
    embedder: str = "auto"  # auto | char-ngram | minilm | an HF model id (paper: Qwen3-Embedding-8B)
    n_questions: int = 384  # questions sampled per teacher for Tables 1/7 (Table 7: ~384 per set)
    vendi_subsample: int = 128  # Table 1: subsamples of 128
    vendi_bootstrap: int = 100
    judge: str = "exact"  # exact (tiny world) | hf:<model path> | openai:<model>
    judge_base_url: str = ""
    judge_cache: str = "judge_cache.jsonl"


@dataclass
class WorldCheckConfig:
    """Tiny-world evidence (notebook 00): stepping stones vs Hard-Only, latent teaching signal."""

    seeds: int = 3  # seeds per RL arm
    steps: int = 150  # RLOO steps per arm (equal for both arms)
    eval_every: int = 25
    datasets: int = 32  # base-teacher datasets for the latent-signal measurement
    piece_samples: int = 64  # samples per fact for the per-kind accuracy table


@dataclass
class RunConfig:
    name: str = "run"
    seed: int = 0
    description: str = ""
    deviations: list[str] = field(default_factory=list)
    results_dir: str = "results"
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    meta: MetaConfig = field(default_factory=MetaConfig)
    evaluate: EvalConfig = field(default_factory=EvalConfig)
    analyze: AnalyzeConfig = field(default_factory=AnalyzeConfig)
    world_check: WorldCheckConfig = field(default_factory=WorldCheckConfig)

    @property
    def run_dir(self) -> Path:
        return Path(self.results_dir) / self.name


# ---------------------------------------------------------------------------------------------
def _check_type(value, annotation, where: str):
    origin = typing.get_origin(annotation)
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        (item,) = typing.get_args(annotation)
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
        return float(value)
    if annotation in (int, str, bool):
        if type(value) is not annotation:
            raise ConfigError(f"{where}: expected {annotation.__name__}, got {type(value).__name__} {value!r}")
        return value
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, value, where)
    raise ConfigError(f"{where}: unsupported type {annotation}")


def _build(cls, data, where: str):
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(f"{where}: unknown key '{key}' (known: {', '.join(sorted(names))})")
    base = cls()
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            sub_where = f"{where}.{f.name}" if where else f.name
            if dataclasses.is_dataclass(hints[f.name]):
                # nested sections merge over their own defaults
                merged = {**dataclasses.asdict(getattr(base, f.name)), **data[f.name]} if isinstance(data[f.name], dict) else data[f.name]
                kwargs[f.name] = _build(hints[f.name], merged, sub_where)
            else:
                kwargs[f.name] = _check_type(data[f.name], hints[f.name], sub_where)
    return dataclasses.replace(base, **kwargs)


def _set_override(data: dict, dotted: str, raw: str) -> None:
    keys = dotted.split(".")
    node = data
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {dotted}: '{k}' is not a section")
    node[keys[-1]] = yaml.safe_load(raw)


def shipped_params() -> dict[str, Path]:
    """The params files that come with the package: name -> path (checkout's params/ or the wheel's copy)."""
    import importlib.resources

    checkout = Path(__file__).resolve().parent.parent / "params"
    if checkout.is_dir():
        return {p.stem: p for p in sorted(checkout.glob("*.yaml"))}
    try:
        packaged = importlib.resources.files("soar_lite.params")
    except ModuleNotFoundError:
        return {}
    return {Path(p.name).stem: Path(str(p)) for p in packaged.iterdir() if p.name.endswith(".yaml")}


def resolve_params(path: str | Path) -> Path:
    """A params file by path; failing that, a shipped one by name ("tiny", "params/tiny.yaml").

    The fallback lets a pip-installed copy (Colab) run `params/paper-math.yaml` without this repository."""
    path = Path(path)
    if path.is_file():
        return path
    shipped = shipped_params()
    stem = path.stem if path.suffix in (".yaml", ".yml") else path.name
    if stem in shipped and (path.parent in (Path("."), Path("params"))):
        return shipped[stem]
    raise ConfigError(f"params file not found: {path} (shipped params: {', '.join(shipped) or 'none'})")


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load `path` strictly; `overrides` are 'dotted.key=value' strings (YAML values)."""
    path = resolve_params(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e.__class__.__name__}: {str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping")
    data.setdefault("name", path.stem)
    for ov in overrides or []:
        if "=" not in ov:
            raise ConfigError(f"override {ov!r}: expected key=value")
        k, v = ov.split("=", 1)
        _set_override(data, k.strip(), v)
    try:
        cfg = _build(RunConfig, data, "")
    except ConfigError as e:
        raise ConfigError(f"{path}: {str(e).lstrip(': ')}") from None
    validate(cfg, path)
    return cfg


def validate(cfg: RunConfig, path: Path | str = "") -> None:
    """Cross-field checks the types cannot express."""
    checks = [
        (cfg.model.backend in ("auto", "unsloth", "hf"), "model.backend must be auto, unsloth or hf"),
        (cfg.model.sampler in ("auto", "custom", "generate"), "model.sampler must be auto, custom or generate"),
        (cfg.model.train_micro_batch >= 0, "model.train_micro_batch must be >= 0 (0 = whole batch)"),
        (cfg.task.name in ("tiny", "math", "harp", "olympiadbench"), "task.name must be tiny, math, harp or olympiadbench"),
        (cfg.meta.reward in ("grounded", "intrinsic"), "meta.reward must be grounded or intrinsic"),
        (cfg.meta.reward_decoding in ("greedy", "sampled", "logprob"), "meta.reward_decoding must be greedy, sampled or logprob"),
        (cfg.evaluate.mode in ("mixed", "curriculum"), "evaluate.mode must be mixed or curriculum"),
        (cfg.meta.g >= 2, "meta.g must be >= 2 (RLOO needs a leave-one-out baseline)"),
        (cfg.meta.student.group_size >= 2, "meta.student.group_size must be >= 2"),
        (cfg.evaluate.student.group_size >= 2, "evaluate.student.group_size must be >= 2"),
        (0.0 < cfg.probe.test_fraction < 1.0, "probe.test_fraction must be in (0, 1)"),
        (all(k <= cfg.evaluate.samples for k in cfg.evaluate.ks), "evaluate.ks must not exceed evaluate.samples"),
        (cfg.evaluate.teacher_step == 0 or cfg.evaluate.teacher_step in cfg.meta.teacher_snapshots,
         "evaluate.teacher_step must be 0 or one of meta.teacher_snapshots (that step's teacher is kept)"),
    ]
    for ok, msg in checks:
        if not ok:
            raise ConfigError(f"{path}: {msg}" if path else msg)


def to_dict(cfg: RunConfig) -> dict:
    return dataclasses.asdict(cfg)
