"""The evaluation arms, in one place: what each arm is, what it reads, where its training questions come from, how its
fresh students are set up, how many it gets, its sampling-stream keys, its colour, and the comparisons the paper's
claims rest on (paper §4, Tables 4-6, Figs. 3, 5, 7-10, 14-17; v3 Tables 4/5 for SeRL).

Config validation (`config.parse_method`), the evaluation stage (`stages/evaluate.py`), the figures (`plots.py`),
the sampling-stream vocabulary (`seeds.STREAM_KEYS`) and report 04 read this registry; adding an arm is an `Arm(...)`
here (with a `settings` function when its students train differently) and a test. The question sources the stage
knows are the `questions` values below; a new kind of source is the one thing that also needs code in
`stages/evaluate.QuestionSets`.

Nothing here imports the rest of the package (config imports it to validate names).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

QUESTION_SOURCES = ("", "teacher", "pq", "curated", "serl")  # "" = hard-train only (or inference)
# unit of replication -> (plural, how student s maps to its unit: "teacher" = s mod meta.runs, "promoted run" = s mod
# the number of runs with enough promotions, "student" = s itself)
UNITS = {"student": "students", "teacher": "teachers", "run": "PQ runs", "checkpoint": "promoted checkpoints"}
STUDENT_COUNTS = ("seeds", "other_seeds", "base_model_seeds", "ps_seeds")


@dataclass(frozen=True)
class Arm:
    """One evaluation arm (a row of Tables 4-6)."""

    name: str
    what: str  # one line, with the paper's reference
    inference: bool = False  # sampled on hard-test as it is, no training (base-model, SOAR-PS, the teacher as solver)
    teacher: str | None = None  # the meta-trained teacher kind whose checkpoint it reads (meta.teachers' names)
    questions: str = ""  # where its training questions come from (QUESTION_SOURCES); "teacher" with teacher None =
    #                      the untrained model (Base-T)
    promoted: bool = False  # reads a promoting run with >= evaluate.min_promotions promotions (its PQ, its PS)
    promoted_from: str = "grounded"  # ... of this meta-training kind (grounded-frozen: the frozen-teacher control)
    sized: bool = False  # takes `#n`: n questions instead of evaluate.n_questions (Figs. 14-17)
    moded: bool = False  # takes `@mixed` / `@curriculum` (Figs. 7/8)
    students: str = "other_seeds"  # which evaluate count sets its number of students (STUDENT_COUNTS; other_seeds
    #                                 0 = seeds); the two central comparisons' arms get `seeds`
    settings: Callable | None = None  # (evaluate section, parsed name) -> the section its students train with
    color: str = ""  # its colour in every figure ("" = the figure picks a free one)
    stream_keys: tuple[tuple[str, str], ...] = ()  # (kind, key format) of the sampling streams only this arm draws
    unit: str = "student"  # the unit of replication of a claim about this arm (UNITS): a teacher method is
    #                        replicated by teachers, SOAR-PQ by PQ sets (runs), SOAR-PS by promoted checkpoints
    rollouts_of: str | None = None  # trains as many student rollouts as this meta-training kind's run s mod meta.runs
    #                                 consumed (`settings` reads them from its context)

    def __post_init__(self):
        assert self.questions in QUESTION_SOURCES, (self.name, self.questions)
        assert self.students in STUDENT_COUNTS, (self.name, self.students)
        assert not (self.inference and self.questions), self.name
        assert self.unit in UNITS, (self.name, self.unit)

    @property
    def samples_teacher(self) -> bool:
        """Its students' questions are sampled from a meta-trained teacher (Fig. 5 right: split by teacher seed)."""
        return self.questions == "teacher" and self.teacher is not None and not self.inference

    def reads_run(self) -> str | None:
        """The meta-training run kind whose outputs it reads (a teacher checkpoint, the grounded run's PQ/PS, or the
        rollouts a run consumed)."""
        return self.promoted_from if self.promoted else self.teacher or self.rollouts_of


# ---- how an arm's students differ from the evaluate section ---------------------------------------------------
# settings(ecfg, spec), and for an arm with `rollouts_of` settings(ecfg, spec, context=...): what the stage read for
# this student (student_rollouts: the rollouts of the run it matches)
def _four_x_group(ecfg, spec):
    """Table 4's 'Hard-Only (g=128)' row: a 4x RLOO group."""
    return dataclasses.replace(ecfg, student=dataclasses.replace(ecfg.student, group_size=4 * ecfg.student.group_size))


def _extended(ecfg, spec):
    """v3 Fig. 10: Hard-Only trained `extended_steps_factor` times longer."""
    return dataclasses.replace(ecfg, steps=ecfg.extended_steps_factor * ecfg.steps)


def _serl(ecfg, spec):
    """SeRL has no curriculum (mixed unless named @curriculum) and is reported at its fixed step (v3 Tables 4/5)."""
    return dataclasses.replace(ecfg, mode=spec.mode or "mixed", fixed_step=ecfg.serl_step,
                               steps=max(ecfg.steps, ecfg.serl_step))


def _pq(ecfg, spec):
    """"For PQ with curriculum evaluation we use zero learning rate warmup to match the inner-loop environment"
    (App. B.6)."""
    if ecfg.mode != "curriculum":
        return ecfg
    return dataclasses.replace(ecfg, student=dataclasses.replace(ecfg.student, warmup_steps=0))


def _rollout_matched(ecfg, spec, context=None):
    """Hard-Only at equal student compute: as many RLOO steps as it takes to draw the student rollouts the matched
    meta-training run consumed (batch_questions x group_size per step; the last step rounded up, fewer than one step's
    rollouts more), reported at its last step, when all of them are spent. Its hard-test curve has as many points as
    the evaluate section's own students (steps / eval_every), on multiples of eval_every, plus its last step: a
    student of thousands of steps evaluated every eval_every would spend a large share of its time on evaluations
    that only draw its curve (in the tiny world one evaluation of hard-test x 128 samples takes about as long as 13
    RLOO steps, scaled from docs/results.md's profile of an evaluation student at 32 samples)."""
    rollouts = (context or {}).get("student_rollouts")
    if not rollouts:
        raise ValueError("hard-only-matched needs the student rollouts of its meta-training run (none recorded)")
    per_step = ecfg.student.batch_questions * ecfg.student.group_size
    steps = -(-int(rollouts) // per_step)
    points = -(-ecfg.steps // ecfg.eval_every)  # the evaluate section's students' evaluations after step 0
    every = ecfg.eval_every * max(1, -(-steps // (ecfg.eval_every * points)))
    # the copy holds this arm's student alone: the section's checks on other arms (SeRL's step on the eval_every
    # grid) do not apply to its coarser grid
    return dataclasses.replace(ecfg, steps=steps, eval_every=every, fixed_step=steps, methods=[spec.base])


ARMS: dict[str, Arm] = {a.name: a for a in (
    Arm("base-model", "the untrained student sampled on hard-test (`base_model_seeds` inference seeds: the noise "
                      "floor of the evaluation)", inference=True, students="base_model_seeds", color="#888888"),
    Arm("hard-only", "a fresh student, RLOO on hard-train only (Table 4)", students="seeds", color="#1f77b4"),
    Arm("hard-only-4x-group", "Hard-Only with a 4x RLOO group (Table 4's g = 128 row)", settings=_four_x_group,
        color="#17becf"),
    Arm("hard-only-extended", "Hard-Only trained `extended_steps_factor` times longer (v3 Fig. 10: no gain)",
        settings=_extended),
    Arm("hard-only-matched", "Hard-Only trained with as many student rollouts as the grounded teacher's "
                             "meta-training consumed (its run s mod meta.runs, inner loops and tau calibration): "
                             "Finding 1 at equal student compute", settings=_rollout_matched, rollouts_of="grounded"),
    Arm("soar-pq", "a fresh student on the Promotion Questions of a run with >= min_promotions, beside hard-train "
                   "(§2.9)", questions="pq", promoted=True, moded=True, students="seeds", settings=_pq,
        color="#d62728", stream_keys=(("pq", "pq{}"),), unit="run"),
    Arm("soar-ps", "that run's promoted student with the best hard-train score, inference only (§2.9)",
        inference=True, promoted=True, students="ps_seeds", color="#ff7f0e", unit="checkpoint"),
    Arm("frozen-pq", "SOAR-PQ of the frozen-teacher control (meta.teachers grounded-frozen: the same reward and "
                     "promotions, the teacher never updated): what promotion selects without a learning teacher",
        questions="pq", promoted=True, promoted_from="grounded-frozen", moded=True, settings=_pq, color="#7f7f7f",
        unit="run"),
    Arm("frozen-ps", "SOAR-PS of the frozen-teacher control: its promoted student with the best hard-train score, "
                     "inference only", inference=True, promoted=True, promoted_from="grounded-frozen",
        students="ps_seeds", color="#c49c94", unit="checkpoint"),
    Arm("grounded-t", "a fresh student on n questions sampled from the trained grounded teacher, beside hard-train "
                      "(§4)", teacher="grounded", questions="teacher", sized=True, moded=True, students="seeds",
        color="#e377c2", stream_keys=(("synthetic", "syn{}"),), unit="teacher"),
    Arm("grounded-t-inference", "the trained grounded teacher itself as the solver (v3 Table 4's 'Inference with "
                                "Grounded-T' row; `base_model_seeds` seeds, teacher seed s mod meta.runs)",
        inference=True, teacher="grounded", students="base_model_seeds", unit="teacher"),
    Arm("base-t", "the same, questions from the untrained model (§4)", questions="teacher", sized=True, moded=True,
        students="seeds", color="#8c564b"),
    Arm("intrinsic-t", "the same, questions from the teacher meta-trained with the learnability reward (§4)",
        teacher="intrinsic", questions="teacher", sized=True, moded=True, color="#2ca02c", unit="teacher"),
    Arm("grounded-t-no-promotion", "the same, from the grounded teacher trained without promotion (App. B.8)",
        teacher="grounded-no-promotion", questions="teacher", sized=True, moded=True, color="#bcbd22",
        unit="teacher"),
    Arm("curated", "a fresh student on real easier problems (`Task.curated_pool`) beside hard-train, the upper "
                   "bound (Table 4's MATH train (128))", questions="curated", sized=True, moded=True, color="#9467bd",
        stream_keys=(("curated", "cur-{}"),)),
    Arm("serl", "a fresh student on questions the untrained model wrote itself (SeRL's self-instruction), kept by "
                "SeRL's difficulty and diversity filters, rewarded by majority vote, beside hard-train; reported at "
                "`serl_step` (v3 Tables 4/5; soar_lite/serl.py says what is inferred)", questions="serl", sized=True,
        moded=True, settings=_serl, stream_keys=(("serl_vote", "serl-vote{}"),)),
)}

# the comparisons the paper's claims rest on, "a vs b" in this order in tables/comparisons.csv
FIG7_ARMS = ("soar-pq", "grounded-t", "base-t", "curated")  # curriculum vs mixed tested for these (Figs. 7/8)
COMPARISONS = [("soar-pq", "hard-only"), ("grounded-t", "base-t"), ("soar-ps", "hard-only"), ("grounded-t", "hard-only"),
               ("base-t", "hard-only"), ("curated", "hard-only"), ("hard-only-4x-group", "hard-only"),
               ("hard-only", "base-model"), ("grounded-t", "intrinsic-t"), ("grounded-t", "grounded-t-no-promotion"),
               ("soar-pq", "grounded-t"), ("hard-only-extended", "hard-only"), ("grounded-t-inference", "base-model"),
               ("serl", "hard-only"), ("soar-pq", "serl"), ("serl", "base-t"), ("soar-pq", "hard-only-matched"),
               ("hard-only-matched", "hard-only"), ("soar-pq", "frozen-pq"), ("soar-ps", "frozen-ps"),
               ("frozen-pq", "hard-only")]
COMPARISONS += [(f"{m}@curriculum", f"{m}@mixed") for m in FIG7_ARMS]  # Figs. 7/8: curriculum vs mixed
COMPARISONS += [(f"grounded-t#{n}", f"curated#{n}") for n in (32, 64, 128)]  # Fig. 14/16: teacher vs real, per |X|

# report 04's figures: which arms each one draws, where the run evaluated them
FIG5_LEFT = ("grounded-t", "base-t", "hard-only")
FIG9_TRAINED = ("hard-only", "hard-only-4x-group", "soar-pq", "curated")  # beside SOAR-PS as a line
FIG14_FAMILIES = ("grounded-t", "curated")

METHODS = tuple(ARMS)
SAMPLED_METHODS = tuple(a.name for a in ARMS.values() if a.sized)
MODE_METHODS = tuple(a.name for a in ARMS.values() if a.moded)
INFERENCE_METHODS = tuple(a.name for a in ARMS.values() if a.inference)
TEACHER_METHODS = tuple(a.name for a in ARMS.values() if a.samples_teacher)
CENTRAL = tuple(a.name for a in ARMS.values() if a.students == "seeds")  # the two central comparisons' arms


def stream_keys() -> dict[str, str]:
    """The sampling-stream kinds the arms add to `seeds.STREAM_KEYS` (each kind once)."""
    out: dict[str, str] = {}
    for arm in ARMS.values():
        for kind, fmt in arm.stream_keys:
            assert out.setdefault(kind, fmt) == fmt, kind
    return out


def colors() -> dict[str, str]:
    return {a.name: a.color for a in ARMS.values() if a.color}
