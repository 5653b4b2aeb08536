"""The tiny world behind the Task interface (`TinyTask`): prompts, the format check, the exact verifier and the
paper's shaped reward, the probe's pools, the leak-free split, and the one labeller of teacher questions
(`exact_label`) that the judge, the question diagnostics and the world report all use. The world itself (facts,
chains, hard candidates) is world.py; see the package docstring."""
from __future__ import annotations

import numpy as np

from ..base import Problem, QAPair, Task, question_label, shaped_reward
from .world import _CHAIN, _DEPTH_INPUT, _LAST_VALUE, _QUESTION, UNCERTAIN, TinyWorld


class TinyTask(Task):
    """The tiny world behind the Task interface (exact verifier, the paper's shaped reward)."""

    name = "tiny"
    world_report = True  # notebook 02_tiny_world measures the world's properties
    curated_pool = "stones"  # the oracle stepping stones, all of them
    curated_all = True
    default_embedder = "char-ngram"  # sentence embeddings see every f^3(123) as the same sentence
    cost_sizes = (105, 53)  # results/tiny-gate: 105 hard candidates, all hard (fail@128 twice), 53 hard-test

    def __init__(self, world: TinyWorld, student_max_new_tokens: int = 20, teacher_max_new_tokens: int = 28):
        self.world = world
        self.student_max_new_tokens = student_max_new_tokens
        self.teacher_max_new_tokens = teacher_max_new_tokens

    REPORT_NOTES = {
        "probe": "**The tiny world's split groups.** No hard-test chain may lie inside a hard-train chain "
                 "(`TinyTask.split_groups`), so hard-test cannot be solved by memorising hard-train.",
        "evaluate": "**What the tiny world can and cannot say.** It is a real instance of the paper's problem (a model "
                    "that fails every probe sample on a hard set, can write problems of every difficulty, and whose "
                    "hard set is unlocked by some curriculum), so it can say whether the *mechanism* works: whether a "
                    "teacher rewarded by a student's progress on hard problems writes better stepping stones than the "
                    "untrained model (Grounded-T vs Base-T), whether that beats direct RL (vs Hard-Only), and where it "
                    "lands against a curated curriculum. It cannot say anything about the paper's numbers for "
                    "Llama-3.2-3B on MATH/HARP, about natural-language diversity or about transfer to OlympiadBench; "
                    "those need `params/paper-*.yaml` on a GPU. The paper's numbers are shown beside ours for "
                    "orientation, not comparison: scales and units differ (tiny pass@k is on a synthetic hard set).",
    }

    def report_notes(self, stage: str) -> str:
        """The tiny world's prose for reports 01 and 04 -- for the tiny world itself only: a world built on its
        lookups under another name (examples/partial_world) writes its own or none."""
        return self.REPORT_NOTES.get(stage, "") if self.name == TinyTask.name else ""

    def student_prompt(self, question: str) -> str:
        return f"{question}="

    def teacher_prompt(self) -> str:
        return ""

    def parse_teacher(self, text: str) -> QAPair | None:
        """Format check (App. B.2 analogue): 'question=answer', the answer's last value parses.
        Well-posedness is NOT checked here (the paper's format check does not either)."""
        if text.count("=") != 1:
            return None
        question, answer = text.split("=")
        if not question or _LAST_VALUE.search(answer) is None:
            return None
        return QAPair(question=question, answer=answer, text=text)

    # The two-turn teacher (Table 8 analogue): the first call's question is what precedes its '=', the second call
    # continues "question=" with the answer. A raw completion model reads the second prompt exactly as it read the
    # first call's own text, so here two turns differ from one only in the rejection rule and in the first call's
    # discarded tail: the tiny world exercises the code path, it is no test of Table 8's finding.
    def teacher_question_prompt(self) -> str:
        return ""

    def parse_teacher_question(self, text: str) -> str | None:
        question = text.split("=", 1)[0]
        return question if "=" in text and question else None

    def teacher_answer_prompt(self, question: str) -> str:
        return f"{question}="

    def parse_teacher_answer(self, question: str, text: str) -> QAPair | None:
        return self.parse_teacher(f"{question}={text}")

    def extract_answer(self, completion: str) -> str | None:
        """The whole worked chain of a well-formed completion (the tiny world's \\boxed{}): the verifier checks the
        derivation, so a wrong chain that lands on the right final value (a 1-in-256 guess) is not a success. With
        the final value alone that guess was 19 of every 20 successes of the untrained model on hard problems
        (TINY_WORLD.md) and made the probe select on luck; the paper's answers come from a space large enough that a
        guess almost never lands."""
        if _CHAIN.match(completion) is None:
            return None
        return completion

    def is_correct(self, completion: str, reference: str) -> bool:
        got = self.extract_answer(completion)
        return got is not None and got == reference.strip()

    def lucky(self, completion: str, reference: str) -> bool:
        """A well-formed chain that ends on the reference's final value through a wrong chain: what a final-value
        verifier would have counted (measured in report 02's premise gate, rewarded nowhere)."""
        got, ref = self.extract_answer(completion), _LAST_VALUE.search(reference)
        return got is not None and ref is not None and got != reference.strip() and got[-3:] == ref.group(1)

    def student_reward(self, completion: str, reference: str) -> float:
        got = self.extract_answer(completion)
        formatted = got is not None
        verified = formatted and got == reference.strip()
        # paper App. B.3: the 20-point case is "a in y_ans", the reference inside the *extracted* answer; the tiny
        # world's extracted answer is the whole chain, so it coincides with the verified case (120/10/0 in effect);
        # rewarding a right final value through a wrong chain would reward luck
        return shaped_reward(formatted, verified, verified)

    def split_groups(self, problems: list[Problem]) -> list:
        """Connected components of "one chain is a contiguous sub-chain of the other": a split by these labels
        leaves no hard-test chain inside a hard-train chain (the leak of a plain random split)."""
        parent = list(range(len(problems)))

        def find(i):
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for i, a in enumerate(problems):
            for j, b in enumerate(problems[:i]):
                if self.world.is_subchain(a, b) or self.world.is_subchain(b, a):
                    parent[find(i)] = find(j)
        return [find(i) for i in range(len(problems))]

    def shared_structure(self, train: list[Problem], test: list[Problem]) -> dict[str, float]:
        """Sub-chains (must be 0 after the grouped split), test pieces that a train chain also passes through,
        and test final answers that appear anywhere in a train reference chain (the log-likelihood reward
        scores train chains, so these values are trained on indirectly)."""
        w = self.world
        train_pieces = {v for p in train for v in w.path(p.meta["x"], p.meta["depth"])}
        train_values = {v for p in train for v in p.answer.split(">")}
        test_pieces = [v for p in test for v in w.path(p.meta["x"], p.meta["depth"])]
        n = max(len(test), 1)
        return {"test_subchains_of_train": sum(any(w.is_subchain(t, a) for a in train) for t in test) / n,
                "test_pieces_on_train_paths": float(np.mean([v in train_pieces for v in test_pieces])) if test_pieces else 0.0,
                "test_answers_in_train_chains": sum(t.answer.split(">")[-1] in train_values for t in test) / n}

    def problems(self, pool: str) -> list[Problem]:
        """Pools: 'hard-candidates' (probe input), 'stones', 'easy', 'all' (every x, depth)."""
        w = self.world
        if pool == "hard-candidates":
            return [w.problem(x, d) for x, d in w.hard_candidates]
        if pool == "stones":
            return w.stepping_stones()
        if pool == "easy":
            return w.easy_problems()
        if pool == "all":  # every well-posed question
            return [w.problem(x, d) for x in range(w.spec.n_values) for d in range(1, w.spec.max_depth + 1)
                    if w.defined(x, d)]
        raise ValueError(f"tiny world has no pool {pool!r}; choose hard-candidates, stones, easy or all")

    def parse_question(self, question: str) -> tuple[int, int] | None:
        """(x, depth) of a well-posed question, else None."""
        m = _QUESTION.match(question)
        if m is None:
            return None
        depth, x = int(m.group(1)), int(m.group(2))
        if not 1 <= depth <= self.world.spec.max_depth or x >= self.world.spec.n_values:
            return None
        return x, depth

    def question_diagnostics(self, pairs: list[QAPair], hard_train: list[Problem]) -> dict[str, float]:
        """Shares of a teacher sample (`Task.question_diagnostics`), correctness and well-posedness by `exact_label`
        (so a world derived from this one with its own labeller reads its own way):
        well_posed; correct (the whole chain right); on_path (an uncertain fact of the question's path lies on the path
        of a hard-train problem: training on it can move hard-train); useful (on_path and correct: the feature that
        explains most of a dataset's grounded reward, TEACHER_SIGNAL.md); unique (distinct questions / n)."""
        w = self.world
        hard_pieces = {v for p in hard_train for v in w.path(p.meta["x"], p.meta["depth"]) if w.kind[v] in UNCERTAIN}
        n = len(pairs)
        if n == 0:
            return {"n": 0}
        correct, on_path, useful, posed = 0, 0, 0, 0
        for qa in pairs:
            label = self.exact_label(qa.question, qa.answer)
            parsed = self.parse_question(qa.question) if label["is_well_posed"] else None
            posed += parsed is not None
            hit = parsed is not None and any(v in hard_pieces for v in w.path(*parsed))
            correct += label["is_correct"]
            on_path += hit
            useful += hit and label["is_correct"]
        return {"n": n, "useful_share": useful / n, "on_path_share": on_path / n, "correct_share": correct / n,
                "well_posed_share": posed / n, "unique_share": len({qa.question for qa in pairs}) / n}

    def question_stratum(self, question: str) -> str:
        """The question's depth ('depth 3'), or 'unparsed' (`Task.question_stratum`)."""
        m = _DEPTH_INPUT.match(question)
        return f"depth {int(m.group(1))}" if m is not None and m.group(1) else "unparsed"

    def coverage(self, pairs: list[QAPair], hard_test: list[Problem]) -> dict[str, float]:
        """Of the uncertain (shaky or confused) facts on hard-test's chains, the share that lies on the chain of a
        question the set answers correctly (the whole chain right): what a student could learn from it that bears on
        hard-test (`Task.coverage`)."""
        w = self.world
        wanted = {v for p in hard_test for v in w.path(p.meta["x"], p.meta["depth"]) if w.kind[v] in UNCERTAIN}
        taught = set()
        for qa in pairs:
            if self.exact_label(qa.question, qa.answer)["is_correct"]:
                parsed = self.parse_question(qa.question)
                if parsed is not None:
                    taught |= {v for v in w.path(*parsed) if v in wanted}
        return {"hard_test_facts": len(wanted), "hard_test_facts_taught": len(taught),
                "hard_test_fact_coverage": len(taught) / len(wanted) if wanted else float("nan")}

    def exact_label(self, question: str, answer: str) -> dict:
        """Exact labels of one teacher pair, mapped to the paper's taxonomy (App. C.4):
        Ambiguous: the question lacks its depth or its input (`f^(012)`, `f^3()`, a fragment);
        Ill_Posed: it parses but cannot be answered (depth 0 or beyond the maximum, an input outside the domain, a
        path through a hole: an input where f has no value);
        Logical_Fallacy: well posed, wrong, and the worked chain has the wrong number of steps;
        Arithmetic: well posed, right number of steps, some lookup wrong; None: correct (the whole chain, as the
        verifier checks it)."""
        world = self.world
        m = _DEPTH_INPUT.match(question)
        if m is None or m.group(1) == "" or m.group(2) == "":
            return question_label(False, False, "Ambiguous", "N/A")
        depth, x = int(m.group(1)), int(m.group(2))
        if not 1 <= depth <= world.spec.max_depth or x >= world.spec.n_values or len(m.group(2)) != 3:
            return question_label(False, False, "Ill_Posed", "N/A")
        if not world.defined(x, depth):
            return question_label(False, False, "Ill_Posed", "N/A")
        truth = world.format_chain(world.chain(x, depth))
        if answer.strip() == truth:
            return question_label(True, True, "None", truth)
        steps = answer.split(">") if answer else []
        error = "Arithmetic" if len(steps) == depth else "Logical_Fallacy"
        return question_label(True, False, error, truth)
