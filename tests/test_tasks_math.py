"""Benchmark loaders and the paper's prompts."""
import re

import pytest

from soar_lite.tasks.math_data import STUDENT_PROMPT, MathTask, load_problems


@pytest.mark.parametrize("name,count", [("math-test", 5000), ("math-train", 7500), ("math500", 500),
                                        ("harp", 4780), ("olympiadbench", 675), ("olympiadbench-674", 674)])
def test_loader_counts(name, count):
    probs = load_problems(name)
    assert len(probs) == count
    assert len({p.id for p in probs}) == count
    assert all(p.question for p in probs)
    # two MATH train solutions box nothing (train/number_theory/7115.json, 7117.json), as released
    assert sum(not p.answer for p in probs) <= (2 if name == "math-train" else 0)


def test_math_answers_come_from_the_last_box():
    p = load_problems("math-test")[0]
    assert p.id == "test/algebra/1.json" and p.answer == "2"


def test_student_prompt_renders_as_in_the_paper():
    task = MathTask("math")
    expected = (
        "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
        "The assistant first shows the complete reasoning process step by step, then provides the final answer in "
        "\\boxed{}. The assistant must always follow the format: 'User: [question] Assistant: [detailed reasoning] "
        "The final answer is: \\boxed{[answer]}.\n\nUser: What is 1+1? Assistant: "
    )
    assert task.student_prompt("What is 1+1?") == expected
    assert STUDENT_PROMPT.count("<QUESTION>") == 1


@pytest.mark.parametrize("text,question,answer", [
    ("<question>What is 2+3?</question><answer>\\boxed{5}</answer>", "What is 2+3?", "5"),
    ("think... <question>Q?<question><answer>\\boxed{\\frac{1}{2}}</answer> more", "Q?", "\\frac{1}{2}"),  # paper's tag
    ("<question>Q?</question><answer>5</answer>", None, None),           # no box
    ("<question>Q?</question>", None, None),                             # no answer tag
    ("<question></question><answer>\\boxed{1}</answer>", None, None),     # empty question
    ("\x00\x01 garbage <answer>\\boxed{", None, None),                  # malformed text never crashes
])
def test_teacher_parser(text, question, answer):
    qa = MathTask("math", verify_timeout_s=20).parse_teacher(text)
    if question is None:
        assert qa is None
    else:
        assert qa.question == question and qa.answer == answer


def test_olympiadbench_674_variant_is_the_primary_minus_its_quirks():
    """PROVENANCE.md: 659 questions identical to the primary file once the variant's instruction suffix is
    removed; the 15 TNYWR relay problems made self-contained; id 1965 dropped."""
    primary = {p.question for p in load_problems("olympiadbench")}
    variant = load_problems("olympiadbench-674")
    assert not any("Please reason step by step" in p.question for p in variant)
    assert sum(p.question in primary for p in variant) == 659


def _write(data_dir, content: bytes):
    (data_dir / "math").mkdir(parents=True, exist_ok=True)
    path = data_dir / "math" / "test.jsonl"
    path.write_bytes(content)
    return path


GOOD = b'{"unique_id": "a", "problem": "1+1?", "answer": "2"}\n'


@pytest.mark.parametrize("content, message", [
    (b"", r"test\.jsonl: no records \(the file is empty\)"),
    (b"\n\n", r"no records"),
    (GOOD + b'{"unique_id": "b", "problem": "2+2?", "answer": null}\n', r"test\.jsonl:2: the answer must be a string, got None"),
    (GOOD + b'{"unique_id": "b", "problem": "", "answer": "4"}\n', r"test\.jsonl:2: the question must be a non-empty"),
    (GOOD + b'{"unique_id": "b", "problem": "2+2?"\n', r"test\.jsonl:2: not valid JSON"),
    (GOOD + b'[1, 2]\n', r"test\.jsonl:2: a record must be a JSON object"),
    (GOOD + b'\n{"unique_id": "b", "question": "2+2?", "answer": "4"}\n', r"test\.jsonl:3: the record lacks a field"),
    (GOOD + b'{"unique_id": "b", "problem": "' + b"x" * 2_000_000 + b'", "answer": "4"}\n', r"test\.jsonl:2: the question has 2,000,000 characters"),
    (b"\xff\xfe" + "x".encode("utf-16-le"), r"not UTF-8"),
    (GOOD + b"[" * 100_000 + b"]" * 100_000 + b"\n", r"test\.jsonl:2: the JSON is nested too deeply"),  # RecursionError
    (GOOD + b'{"unique_id": "a", "problem": "3+3?", "answer": "6"}\n', r"test\.jsonl:2: id 'a' again \(first at line 1\)"),
])
def test_a_bad_local_data_file_is_one_error_naming_file_and_line(tmp_path, content, message):
    from soar_lite.tasks.base import DataError

    _write(tmp_path, content)
    with pytest.raises(DataError, match=message) as e:
        load_problems("math-test", str(tmp_path))
    assert "\n" not in str(e.value)


def test_a_bom_and_a_numeric_answer_are_accepted(tmp_path):
    _write(tmp_path, b"\xef\xbb\xbf" + GOOD + b'{"unique_id": "b", "problem": "2+2?", "answer": 4}\n')
    probs = load_problems("math-test", str(tmp_path))
    assert [(p.id, p.answer) for p in probs] == [("a", "2"), ("b", "4")]


def test_the_cli_stops_on_a_bad_data_file_before_writing_anything(tmp_path):
    import subprocess
    import sys

    from conftest import REPO

    _write(tmp_path / "data", b"")
    r = subprocess.run([sys.executable, "-m", "soar_lite.cli", "run", "colab-small", "-o", f"results_dir={tmp_path / 'res'}",
                        "-o", "model.path=tiny", "-o", "model.backend=hf",
                        "-o", f"task.data_dir={tmp_path / 'data'}", "-o", "probe.pool=math-test"],
                       capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 2 and "test.jsonl: no records" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "res").exists()


def test_identical_questions_under_other_ids_stay_on_one_side_of_the_split(tmp_path):
    """Before: the same question twice landed on both sides of hard-train / hard-test."""
    from soar_lite.probe import split_train_test
    from soar_lite.tasks.math_data import MathTask

    lines = b"".join(b'{"unique_id": "%d", "problem": "Q%d?", "answer": "1"}\n' % (i, i % 5) for i in range(40))
    _write(tmp_path, lines)
    task = MathTask("math", str(tmp_path))
    probs = task.problems("math-test")
    for seed in range(10):
        train, test = split_train_test(probs, 0.5, seed, task.split_groups(probs))
        assert not {p.question for p in train} & {p.question for p in test}


@pytest.mark.parametrize("pool, message", [
    ("hf:some/dataset:test", "hub downloads are off"),
    ("hf:nosplit", "hf:<id>:<split>"),
    ("nope", "unknown data source 'nope'"),
])
def test_a_bad_math_pool_is_one_line(pool, message, monkeypatch):
    from soar_lite.tasks.base import DataError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DataError, match=re.escape(message)) as e:
        load_problems(pool)
    assert "\n" not in str(e.value)


def test_a_users_own_file_is_a_pool(tmp_path):
    """probe.pool: file:<path> reads a user's JSONL (question or problem, answer, optional id and level)."""
    path = tmp_path / "mine.jsonl"
    path.write_text('{"id": "p1", "question": "1+2?", "answer": "3", "level": "easy"}\n{"problem": "2*3?", "answer": 6}\n')
    probs = load_problems(f"file:{path}")
    assert [(p.id, p.question, p.answer, p.level) for p in probs] == [("p1", "1+2?", "3", "easy"), ("1", "2*3?", "6", "")]
    from soar_lite.tasks.base import DataError

    path.write_text('{"question": "1+2?"}\n')
    with pytest.raises(DataError, match=re.escape(f"{path}:1: the record lacks a field")):
        load_problems(f"file:{path}")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_problems(f"file:{tmp_path / 'nope.jsonl'}")
