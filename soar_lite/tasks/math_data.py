"""MATH, HARP and OlympiadBench: loaders and the math Task (paper §1.2, §2.1, App. B.1-B.3).

The benchmark files are vendored gzipped under `soar_lite/data/<set>/` (bytes unchanged before
compression; PROVENANCE.md beside each gives source, licence and sha256 of the uncompressed file).
`load_records` also reads an uncompressed local `.jsonl` from `task.data_dir`, and a Hugging Face
dataset id via `datasets` when online (HF_HUB_OFFLINE unset).

Prompts are the paper's App. B.1 text verbatim; the teacher parser accepts the paper's literal closing
tag `<question>` (a typo in the paper, INFERRED) as well as `</question>`.
"""
from __future__ import annotations

import dataclasses
import gzip
import json
import re
from pathlib import Path

from ..verify import answers_match, last_boxed, strip_dollars
from .base import DataError, Problem, QAPair, Task, shaped_reward

DATA_DIR = Path(__file__).resolve().parent.parent / "data"

# Paper App. B.1, verbatim.
TEACHER_PROMPT = (
    "You are generating a new math problem for a math assistant.\n"
    "Allowed topics: Algebra, Counting and Probability, Geometry, Intermediate Algebra, Number Theory, "
    "Prealgebra, or Precalculus.\n"
    "Output rules (follow EXACTLY):\n"
    "- Provide the final formatted problem in this structure: <question>[full math question]<question>"
    "<answer>\\boxed{[answer]}</answer>\n"
    "- Any explanations, steps, or reasoning about the problem goes OUTSIDE the <question> and <answer> tags.\n"
    "Constraints:\n"
    "- The problem must be original, challenging, and require at least 2--3 steps of reasoning.\n"
    "- Output exactly ONE problem. You MUST follow the specified format EXACTLY.\n"
    "Begin now:"
)
# The multi-turn teacher (App. D.3 / Table 8), INFERRED wording (the paper gives none): the first call asks for the
# question alone, the second, in the same conversation, for its answer.
TEACHER_QUESTION_PROMPT = TEACHER_PROMPT.replace(
    "<question>[full math question]<question><answer>\\boxed{[answer]}</answer>",
    "<question>[full math question]</question>. Do not solve it.")
TEACHER_ANSWER_PROMPT = ("Now solve the problem you wrote. Provide the final answer in this structure: "
                         "<answer>\\boxed{[answer]}</answer>")
# SeRL's self-instruction (v3 Tables 4/5 baseline): the paper's teacher prompt after real problems shown as
# examples (INFERRED wording: the paper gives none for SeRL; SeRL prompts with a few seed instructions).
SELF_INSTRUCT_HEADER = "Here are examples of math problems:\n\n"
STUDENT_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first shows the complete reasoning process step by step, then provides the final answer "
    "in \\boxed{}. The assistant must always follow the format: 'User: [question] Assistant: [detailed "
    "reasoning] The final answer is: \\boxed{[answer]}.\n\nUser: <QUESTION> Assistant: "
)

SOURCES = {
    # name -> (file under soar_lite/data, id function, question field, answer function)
    "math-test": "math/test.jsonl.gz",
    "math-train": "math/train.jsonl.gz",
    "math500": "math/math500.jsonl.gz",
    "harp": "harp/HARP.jsonl.gz",
    "olympiadbench": "olympiadbench/OE_TO_maths_en_COMP.jsonl.gz",
    # the paper's count (Table 2: 674): TNYWR relay problems made self-contained, one problem dropped (PROVENANCE.md)
    "olympiadbench-674": "olympiadbench/OE_TO_maths_en_COMP_variant_674_answers_only.jsonl.gz",
}
# the variant file appends its own instruction to every problem; the student prompt supplies ours
OLYMPIAD_VARIANT_SUFFIX = "\nPlease reason step by step, and put your final answer within \\boxed{}."


MAX_QUESTION_CHARS = 20_000  # a longer problem is a broken record (the longest vendored one has under 5,000)


def read_jsonl_lines(path: Path) -> list[tuple[int, dict]]:
    """(line number, record) of a .jsonl or .jsonl.gz file; an unreadable file, a line that is not a JSON object or a
    file without records is a DataError naming the file and line. A UTF-8 BOM is allowed; HARP has no trailing
    newline (PROVENANCE.md), blank lines are skipped."""
    try:
        raw = (gzip.open if path.suffix == ".gz" else open)(path, "rb").read()
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot be read ({type(e).__name__}: {e})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 (byte {e.start}); save it as UTF-8") from None
    out = []
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{i}: not valid JSON ({e.msg}, column {e.colno})") from None
        except RecursionError:
            raise DataError(f"{path}:{i}: the JSON is nested too deeply to be a record") from None
        if not isinstance(rec, dict):
            raise DataError(f"{path}:{i}: a record must be a JSON object, got {type(rec).__name__}")
        out.append((i, rec))
    if not out:
        raise DataError(f"{path}: no records (the file is empty)")
    return out


def read_jsonl(path: Path) -> list[dict]:
    return [rec for _, rec in read_jsonl_lines(path)]


def source_path(name: str, data_dir: str = "") -> Path:
    """The file behind a named source: the vendored copy, or `data_dir`'s (gzipped or plain); `file:<path>` names a
    user's own .jsonl / .jsonl.gz file directly."""
    if name.startswith("file:"):
        path = Path(name[len("file:"):]).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"data file {name!r} not found: {path}")
        return path
    if name not in SOURCES:
        raise DataError(f"unknown data source {name!r}; choose one of {', '.join(SOURCES)}, file:<path.jsonl> or "
                        f"hf:<id>:<split>")
    rel = SOURCES[name]
    path = Path(data_dir) / rel if data_dir else DATA_DIR / rel
    if data_dir and not path.exists():
        plain = path.with_suffix("")  # allow uncompressed copies
        path = plain if plain.exists() else path
    if not path.exists():
        raise FileNotFoundError(f"data file for {name!r} not found: {path}")
    return path


def load_records(name: str, data_dir: str = "") -> list[tuple[int, dict]]:
    """(line, record) of a source: vendored copy, a local folder, or a hub dataset id ('hf:<id>:<split>', the row
    number standing in for the line)."""
    if name.startswith("hf:"):
        import os

        parts = name.split(":", 2)
        if len(parts) != 3 or not parts[1] or not parts[2]:
            raise DataError(f"data source {name!r}: a hub dataset is hf:<id>:<split>")
        if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("HF_DATASETS_OFFLINE") == "1":
            raise DataError(f"data source {name!r} is a hub dataset and hub downloads are off: pass --online (or set "
                            f"SOAR_LITE_ONLINE=1), or point the pool at a local file")
        from datasets import load_dataset

        try:
            return [(i, dict(r)) for i, r in enumerate(load_dataset(parts[1], split=parts[2]), 1)]
        except Exception as e:  # the hub's own errors (connection, unknown id or split) as one line
            raise DataError(f"data source {name!r}: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}") from None
    return read_jsonl_lines(source_path(name, data_dir))


def _math_answer(rec: dict) -> str:
    if "answer" in rec:
        return rec["answer"]
    boxed = last_boxed(rec["solution"])
    if boxed is None:
        raise DataError(f"MATH record {rec.get('unique_id')} has no \\boxed answer")
    return boxed


def _problem(name: str, i: int, r: dict) -> Problem:
    if name.startswith("math"):
        return Problem(r.get("unique_id", str(i)), r["problem"], _math_answer(r), r.get("level", ""),
                       {"type": r.get("type", "")})
    if name == "harp":
        return Problem(f"{r['year']}/{r['contest']}/{r['number']}", r["problem"], strip_dollars(r["answer"]),
                       f"Level {r['level']}", {"subject": r.get("subject", "")})
    if name == "olympiadbench-674":
        return Problem(f"v674/{i}", r["problem"].removesuffix(OLYMPIAD_VARIANT_SUFFIX), strip_dollars(r["answer"]), "")
    if name == "olympiadbench":
        return Problem(str(r["id"]), r["question"], strip_dollars(r["final_answer"][0]), r.get("subfield", ""),
                       {"answer_type": r.get("answer_type", "")})
    # a user's file (file:<path>) or a hub dataset: id (default: the row), problem or question, answer, level
    return Problem(str(r.get("id", i)), r.get("problem") or r["question"], r["answer"], str(r.get("level", "")))


def _text(value, what: str, where: str, empty_ok: bool = False) -> str:
    """A record's question or answer as a string (a number is written as text); an empty answer is kept (MATH train
    has one `\\boxed{}`), an empty question is not."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not (empty_ok or value.strip()):
        raise DataError(f"{where}: the {what} must be a {'' if empty_ok else 'non-empty '}string, got {value!r}")
    return value


def to_problems(name: str, records: list[tuple[int, dict]], where: str = "") -> list[Problem]:
    """Problems from (line, record) pairs; a record missing a field, with an empty or null question or answer, or a
    question over MAX_QUESTION_CHARS is a DataError naming `where` (the file) and the line."""
    out, first_line = [], {}
    for i, (line, r) in enumerate(records):
        at = f"{where or name}:{line}"
        try:
            p = _problem(name, i, r)
        except (KeyError, IndexError, TypeError) as e:
            raise DataError(f"{at}: the record lacks a field the {name} loader reads ({type(e).__name__}: {e})") from None
        except DataError as e:
            raise DataError(f"{at}: {e}") from None
        p = dataclasses.replace(p, question=_text(p.question, "question", at), answer=_text(p.answer, "answer", at, empty_ok=True))
        if len(p.question) > MAX_QUESTION_CHARS:
            raise DataError(f"{at}: the question has {len(p.question):,} characters (at most {MAX_QUESTION_CHARS:,}): "
                            f"a broken record")
        if p.id in first_line:
            raise DataError(f"{at}: id {p.id!r} again (first at line {first_line[p.id]}): ids must be unique")
        first_line[p.id] = line
        out.append(p)
    return out


def load_problems(name: str, data_dir: str = "") -> list[Problem]:
    """A pool's problems; `name[<level>]` keeps one difficulty level (e.g. `math-test[Level 1]`, a CPU-sized slice)."""
    if name.endswith("]") and "[" in name:
        base, level = name[:-1].split("[", 1)
        probs = [p for p in load_problems(base, data_dir) if p.level == level]
        if not probs:
            raise DataError(f"data source {name!r}: no problem of level {level!r} in {base!r}")
        return probs
    where = name if name.startswith("hf:") else str(source_path(name, data_dir))
    return to_problems(name, load_records(name, data_dir), where)


_Q = re.compile(r"<question>(.*?)(?:</question>|<question>)", re.S)
_A = re.compile(r"<answer>(.*?)</answer>", re.S)


# (probe pool, fail@128 hard-test) sizes of the paper's Table 2, for the cost model
PAPER_SIZES = {"math": (5000, 360), "harp": (4768, 714), "olympiadbench": (674, 158)}


class MathTask(Task):
    """Math benchmarks behind the Task interface: paper prompts, Math-Verify, shaped reward."""

    curated_pool = "math-train"  # Table 4's "MATH train (128)": evaluate.n_questions sampled from it
    curated_all = False
    default_embedder = "minilm"
    paper_world = True

    def __init__(self, name: str, data_dir: str = "", student_max_new_tokens: int = 1024,
                 teacher_max_new_tokens: int = 512, verify_timeout_s: float = 5.0, teacher_chat_template: bool = True):
        self.name = name
        self.cost_sizes = PAPER_SIZES.get(name, (5000, 360))
        self.teacher_chat_template = teacher_chat_template
        self._teacher_text = TEACHER_PROMPT
        self._tokenizer = None
        self.data_dir = data_dir
        self.student_max_new_tokens = student_max_new_tokens
        self.teacher_max_new_tokens = teacher_max_new_tokens
        self.verify_timeout_s = verify_timeout_s

    def student_prompt(self, question: str) -> str:
        return STUDENT_PROMPT.replace("<QUESTION>", question)

    def teacher_prompt(self) -> str:
        return self._teacher_text

    def bind_tokenizer(self, tokenizer) -> None:
        """Send the teacher prompt as a user turn through the model's chat template (INFERRED, §2.1),
        when the tokenizer has one; the student prompt stays the paper's raw completion prompt."""
        if self.teacher_chat_template and getattr(tokenizer, "chat_template", None):
            self._tokenizer = tokenizer
            self._teacher_text = self._as_user_turn(TEACHER_PROMPT)

    def _as_user_turn(self, text: str) -> str:
        if self._tokenizer is None:
            return text
        return self._tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False,
                                                   add_generation_prompt=True)

    def teacher_question_prompt(self) -> str:
        return self._as_user_turn(TEACHER_QUESTION_PROMPT)

    def parse_teacher_question(self, text: str) -> str | None:
        q = _Q.search(text)
        return q.group(1).strip() if q is not None and q.group(1).strip() else None

    def teacher_answer_prompt(self, question: str) -> str:
        turns = [{"role": "user", "content": TEACHER_QUESTION_PROMPT},
                 {"role": "assistant", "content": f"<question>{question}</question>"},
                 {"role": "user", "content": TEACHER_ANSWER_PROMPT}]
        if self._tokenizer is None:
            return "\n\n".join(t["content"] for t in turns) + "\n"
        return self._tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)

    def parse_teacher_answer(self, question: str, text: str) -> QAPair | None:
        return self.parse_teacher(f"<question>{question}</question>{text}")

    def self_instruct_prompt(self, demonstrations: list[Problem]) -> str:
        """SeRL's self-instruction: the teacher prompt after the demonstrations, each in question tags."""
        shown = "\n\n".join(f"<question>{p.question}</question>" for p in demonstrations)
        return self._as_user_turn(SELF_INSTRUCT_HEADER + shown + "\n\n" + TEACHER_PROMPT)

    def parse_teacher(self, text: str) -> QAPair | None:
        """App. B.2: question and answer tags, a \\boxed{}, boxed contents that parse."""
        q, a = _Q.search(text), _A.search(text)
        if q is None or a is None:
            return None
        boxed = last_boxed(a.group(1))
        if boxed is None or not boxed.strip() or not q.group(1).strip():
            return None
        if not _parses(boxed, self.verify_timeout_s):
            return None
        return QAPair(question=q.group(1).strip(), answer=boxed.strip(), text=text)

    def extract_answer(self, completion: str) -> str | None:
        return last_boxed(completion)

    def is_correct(self, completion: str, reference: str) -> bool:
        return answers_match(completion, reference, self.verify_timeout_s)

    def student_reward(self, completion: str, reference: str) -> float:
        ans = last_boxed(completion)
        formatted = ans is not None
        verified = formatted and answers_match(completion, reference, self.verify_timeout_s)
        contains = formatted and strip_dollars(reference) in ans
        return shaped_reward(formatted, verified, contains)

    def problems(self, pool: str) -> list[Problem]:
        return load_problems(pool, self.data_dir)


def _parses(answer: str, timeout_s: float) -> bool:
    """Math-Verify can parse the boxed contents (checked by comparing the answer with itself)."""
    from ..verify import _verifier

    return _verifier(timeout_s).equal(answer, answer)
