"""Benchmark loaders and the paper's prompts."""
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
