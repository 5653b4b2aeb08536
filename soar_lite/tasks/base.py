"""The problem-source interface shared by the tiny world and the math benchmarks.

A *task* knows how to phrase a question for the student (paper App. B.1 student prompt), how to ask
the teacher for a new question+answer pair (App. B.1 teacher prompt), how to parse the teacher's
output (App. B.2 format check), and how to score a student completion (App. B.3 shaped reward).
Everything a loop needs about "the world" goes through this interface, so the SOAR loop, probe and
evaluation code never branch on which world they run in.
"""
from __future__ import annotations

from dataclasses import dataclass, field


class DataError(ValueError):
    """A benchmark file or record is unusable; the message (one line) names the file and, for a record, its line."""


@dataclass(frozen=True)
class Problem:
    """One question with its reference answer. `level` is a difficulty label (world-specific)."""

    id: str
    question: str
    answer: str
    level: str = ""
    meta: dict = field(default_factory=dict, compare=False, hash=False)


@dataclass(frozen=True)
class QAPair:
    """A teacher rollout that passed the format check: its question, its (possibly wrong) answer."""

    question: str
    answer: str
    text: str  # the full teacher completion, kept for the teacher's RLOO update


# Paper App. B.3 shaped student reward, divided by 120 so that a verified answer is worth 1.0
# (RLOO is invariant to adding a constant but not to scale; the division keeps learning rates
# comparable between the binary and the shaped reward).
REWARD_VERIFIED = 120.0
REWARD_CONTAINS = 20.0
REWARD_FORMATTED = 10.0


def shaped_reward(formatted: bool, verified: bool, contains_reference: bool) -> float:
    """Paper App. B.3: 120 if boxed and verified; 20 if boxed, not verified, reference in the
    extracted answer; 10 if boxed otherwise; 0 without a box. Returned divided by 120."""
    if not formatted:
        return 0.0
    if verified:
        return REWARD_VERIFIED / REWARD_VERIFIED
    if contains_reference:
        return REWARD_CONTAINS / REWARD_VERIFIED
    return REWARD_FORMATTED / REWARD_VERIFIED


def question_label(well_posed: bool, correct: bool, error: str, verified: str) -> dict:
    """One label record of a (question, proposed answer) pair, the fields of the paper's judge (App. C.4)."""
    return {"is_well_posed": bool(well_posed), "is_correct": bool(correct and well_posed), "error_type": error,
            "verified_answer": verified}


class Task:
    """What the stages need to know about a world. Subclass it in one `tasks/` module and register the class
    (`soar_lite.tasks.register_task`): nothing else in the package names a world.

    Required: `student_prompt`, `teacher_prompt`, `parse_teacher`, `extract_answer`, `is_correct`,
    `student_reward`, `problems`. The attributes below say what the stages need beyond the prompts."""

    name: str = ""
    student_max_new_tokens: int = 1024
    teacher_max_new_tokens: int = 512
    world_report: bool = False  # the world has its own report stage (tiny_world)
    curated_pool: str = ""  # pool of real easier problems behind the Curated method (Tables 4-6)
    curated_all: bool = False  # True: the whole pool is the curriculum; False: evaluate.n_questions sampled from it
    default_embedder: str = "minilm"  # analyze.embedder=auto (analysis.embed)
    paper_world: bool = False  # a benchmark of the paper: the cost model may price it at the paper's efficiency
    cost_sizes: tuple[int, int] = (5000, 360)  # (probe pool, hard-test) sizes the cost model assumes (Table 2)

    def bind_tokenizer(self, tokenizer) -> None:
        """Called once the policy's tokenizer is known (e.g. to render a prompt through its chat template)."""

    REQUIRED_HOOKS = ("student_prompt", "teacher_prompt", "parse_teacher", "extract_answer", "is_correct",
                      "student_reward", "problems")

    def missing_hooks(self) -> list[str]:
        """The required hooks this task does not define (`make_task` refuses such a world in one line)."""
        return [h for h in self.REQUIRED_HOOKS if getattr(type(self), h) is getattr(Task, h)]

    def student_prompt(self, question: str) -> str:
        """Required. The text the student model continues to answer `question` (App. B.1): a plain string, tokenized
        as is (render a chat template here, once -- `bind_tokenizer` gives the tokenizer). The student's completion
        comes back decoded without special tokens."""
        raise NotImplementedError

    def teacher_prompt(self) -> str:
        """Required. The text the teacher continues to write one question and its answer (App. B.1). An empty string
        means the model starts from its BOS token alone (a world whose model writes a question unprompted)."""
        raise NotImplementedError

    def parse_teacher(self, text: str) -> QAPair | None:
        """Required. The format check (App. B.2): the (question, answer) of one teacher completion `text` (decoded,
        without special tokens), or None when it fails; the pair keeps `text` for the teacher's update."""
        raise NotImplementedError

    def extract_answer(self, completion: str) -> str | None:
        """Required. The final answer in a student completion (the boxed answer, in the paper), or None."""
        raise NotImplementedError

    def is_correct(self, completion: str, reference: str) -> bool:
        """Required. Whether a student completion's answer equals `reference`. During meta-training `reference` is
        the *teacher's* answer to its own question (possibly wrong); in the probe and evaluation it is the real
        problem's answer."""
        raise NotImplementedError

    def student_reward(self, completion: str, reference: str) -> float:
        """Required. The student's RLOO reward in [0, 1] for one completion (App. B.3's shaped reward divided by
        120: `shaped_reward`); the same `reference` contract as `is_correct`."""
        raise NotImplementedError

    def problems(self, pool: str) -> list[Problem]:
        """Required. The problems of a named pool (`probe.pool`, `probe.level_pool`, `curated_pool`); an unknown
        name raises ValueError (one line). Ids must be unique. `Problem.meta` survives the probe's save and load as
        JSON (probe/hard_train.json): JSON values only (a tuple comes back a list, an int key a string)."""
        raise NotImplementedError

    # The multi-turn teacher (meta.teacher_turns = 2, App. D.3 / Table 8): optional; a task without these hooks runs
    # the single-turn teacher only (`soar-lite run` refuses meta.teacher_turns 2 for it in one line).
    def teacher_question_prompt(self) -> str:
        """The first call: ask for a question only."""
        raise NotImplementedError

    def parse_teacher_question(self, text: str) -> str | None:
        """The question of a first call's completion, or None when it fails the format check."""
        raise NotImplementedError

    def teacher_answer_prompt(self, question: str) -> str:
        """The second call: the conversation so far (the question the teacher wrote) and the request for its answer."""
        raise NotImplementedError

    def parse_teacher_answer(self, question: str, text: str) -> QAPair | None:
        """The pair, when the second call's completion passes the answer's format check."""
        raise NotImplementedError

    TWO_TURN_HOOKS = ("teacher_question_prompt", "parse_teacher_question", "teacher_answer_prompt",
                      "parse_teacher_answer")

    def missing_two_turn_hooks(self) -> list[str]:
        """The two-turn hooks this task does not define (all four are needed for meta.teacher_turns 2)."""
        return [h for h in self.TWO_TURN_HOOKS if getattr(type(self), h) is getattr(Task, h)]

    def has_two_turn_teacher(self) -> bool:
        return not self.missing_two_turn_hooks()

    def self_instruct_prompt(self, demonstrations: list[Problem]) -> str:
        """SeRL's self-instruction prompt (the `serl` evaluation arm, `soar_lite.serl`): the teacher prompt with real
        problems shown as examples. Default: the teacher prompt alone, for a world whose model reads no
        demonstrations (the tiny world's model writes a question from an empty prompt)."""
        return self.teacher_prompt()

    def is_correct_many(self, completions: list[str], references: list[str]) -> list[bool]:
        return [self.is_correct(c, r) for c, r in zip(completions, references)]

    def student_rewards(self, completions: list[str], references: list[str]) -> list[float]:
        return [self.student_reward(c, r) for c, r in zip(completions, references)]

    def exact_label(self, question: str, answer: str) -> dict:
        """Well-posedness and correctness decided by the world itself (`analyze.judge: exact`)."""
        raise ValueError(f"task {self.name!r} cannot label its own questions (analyze.judge 'exact'): "
                         "name an LLM judge (openai:<model> or hf:<path>)")

    def question_diagnostics(self, pairs: list[QAPair], hard_train: list[Problem]) -> dict[str, float]:
        """Optional: the world's own reading of a teacher sample -- shares of questions with a property the world
        can decide (e.g. the tiny world's useful stepping stones). Logged per outer step (metrics.jsonl
        `diagnostics`) and compared between trained and untrained teachers at the end of a run; never part of any
        reward. Must hold `n` (the pairs read); {} = the world has none."""
        return {}

    def question_stratum(self, question: str) -> str:
        """Optional: the stratum a teacher question falls in, for diversity read within strata (report 05; e.g. the
        tiny world's question depth: a teacher that shifts to short questions lowers a pooled Vendi score without
        being less diverse within any depth). 'all' = one stratum."""
        return "all"

    def coverage(self, pairs: list[QAPair], hard_test: list[Problem]) -> dict[str, float]:
        """Optional: how much of what matters for hard-test a question set teaches correctly (report 05; e.g. the
        tiny world's share of hard-test's uncertain facts on the path of a correct question). Read only, never tuned
        on; {} = the world measures none."""
        return {}

    def report_notes(self, stage: str) -> str:
        """Optional: the world's own prose for a stage's report (Markdown; e.g. what this world can and cannot say
        about the paper's claims, shown near the top of report 04). '' = none: the reports are world-neutral."""
        return ""

    def split_groups(self, problems: list[Problem]) -> list:
        """One label per problem; the hard-train/hard-test split keeps each label on one side (default: the paper's
        plain random split, except that identical questions -- a duplicate record under another id -- share a label,
        so a question is never on both sides)."""
        first: dict[str, int] = {}
        return [first.setdefault(p.question.strip(), i) for i, p in enumerate(problems)]

    def shared_structure(self, train: list[Problem], test: list[Problem]) -> dict[str, float]:
        """How much structure hard-test still shares with hard-train (reported by the probe; {} = not measured)."""
        return {}
