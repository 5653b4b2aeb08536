"""SeRL's pure parts (soar_lite/serl.py): majority vote, agreement share, the difficulty and diversity filters."""
import pytest

from soar_lite.serl import agreement_share, majority_answer, select_questions


@pytest.mark.parametrize("answers, majority, share", [
    (["3", "4", "4", None], "4", 0.5),
    ([" 4", "4 ", "3", "3"], "4", 0.5),        # a tie: the first seen; whitespace does not split a vote
    (["7", "7", "7", "7"], "7", 1.0),
    ([None, None, ""], None, 0.0),             # nothing parsed: no label, no agreement
    (["1", None, None, None], "1", 0.25),      # unparsed samples count in the denominator
    ([], None, 0.0),
])
def test_majority_answer_and_agreement(answers, majority, share):
    assert majority_answer(answers) == majority
    assert agreement_share(answers) == pytest.approx(share)


@pytest.mark.parametrize("questions, shares, count, kept", [
    (["a", "b", "c", "d"], [0.1, 0.5, 0.9, 0.8], 4, [1, 3]),       # the band [0.2, 0.8] is closed
    (["a", "a ", "b", "c"], [0.5, 0.5, 0.5, 0.5], 4, [0, 2, 3]),   # a repeat question is dropped
    (["a", "b", "c", "d"], [0.5, 0.5, 0.5, 0.5], 2, [0, 1]),       # the first `count`, in draw order
    (["a", "b"], [0.0, 1.0], 2, []),                               # too hard, already solved
])
def test_select_questions(questions, shares, count, kept):
    assert select_questions(questions, shares, count=count, min_agreement=0.2, max_agreement=0.8) == kept


@pytest.mark.parametrize("reference, group, expected", [
    ("123", ["555>777", "555>888"], "123"),             # a labelled item keeps its reference
    (None, ["555>777", "555>888", "555>777"], "777"),   # unlabelled: the group's majority answer
    (None, ["oops", "x"], ""),                          # no answer in the group: a reference nothing matches
])
def test_reward_reference(reference, group, expected):
    from soar_lite.student import RLItem, reward_reference

    class Chains:
        def extract_answer(self, c):
            return c[-3:] if c[-3:].isdigit() else None

    assert reward_reference(Chains(), RLItem("q", reference, "k"), group) == expected


def test_math_self_instruct_prompt_shows_the_demonstrations_then_the_teacher_prompt():
    from soar_lite.tasks.base import Problem
    from soar_lite.tasks.math_data import TEACHER_PROMPT, MathTask

    task = MathTask("math")
    prompt = task.self_instruct_prompt([Problem("1", "What is 1+1?", "2"), Problem("2", "Solve x^2=4.", "2")])
    assert "<question>What is 1+1?</question>" in prompt and "<question>Solve x^2=4.</question>" in prompt
    assert prompt.endswith(TEACHER_PROMPT) and prompt.index("1+1") < prompt.index(TEACHER_PROMPT)
