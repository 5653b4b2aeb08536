"""The tiny world's ground truth, text format, verifier, shaped reward and exact labels."""
import pytest

from soar_lite.tasks.tiny import COMMON, CONFUSED, SHAKY, TinyWorld, TinyWorldSpec
from soar_lite.tasks.tiny.pretrain import build_tokenizer


@pytest.fixture(scope="module")
def task(tiny_task):
    return tiny_task


def test_world_is_deterministic_and_has_enough_hard_candidates(task):
    w2 = TinyWorld(TinyWorldSpec())
    assert (task.world.f == w2.f).all() and (task.world.kind == w2.kind).all()
    assert len(task.world.hard_candidates) >= 256  # room for >= 128 hard problems after fail@128 x 2
    assert set(task.world.kind.tolist()) == {COMMON, SHAKY, CONFUSED}


def test_hard_candidates_match_their_definition(task):
    w = task.world
    for x, d in w.hard_candidates:
        u, c = w.n_uncertain(x, d)
        assert d >= 5 and u >= 5 and 1 <= c <= 2


def test_training_data_never_touches_a_hard_candidate(task):
    import numpy as np
    w = task.world
    rng = np.random.default_rng(0)
    weights = np.ones(w.spec.max_depth) / w.spec.max_depth
    for _ in range(3000):
        q = w.sample_line(rng, weights).split("=")[0]
        x, d = task.parse_question(q)
        assert not w.touches_hard_candidate(x, d)
    for p in task.problems("stones"):
        assert not w.touches_hard_candidate(p.meta["x"], p.meta["depth"]) and p.meta["uncertain"] == 1


def test_piece_distribution_sums_to_one_and_ranks_as_designed(task):
    w = task.world
    for x in range(w.spec.n_values):
        p = w.piece_distribution(x)
        assert p.sum() == pytest.approx(1.0)
        if w.kind[x] == SHAKY:
            assert p.argmax() == w.f[x]            # greedy right
        if w.kind[x] == CONFUSED:
            assert p.argmax() == w.distractor[x]   # greedy picks the distractor


@pytest.mark.parametrize("completion,correct,reward", [
    ("{c}", True, 1.0),
    ("{wrong}", False, 10 / 120),
    ("{c_final}>{wrong_final}", False, 10 / 120),   # reference inside the chain but not the final answer: not "a in y_ans" (paper App. B.3)
    ("garbage", False, 0.0),
    ("", False, 0.0),
    ("12>345", False, 0.0),                    # malformed chain
])
def test_verifier_and_shaped_reward(task, completion, correct, reward):
    ref = task.world.format_chain(task.world.chain(7, 2))
    final = ref[-3:]
    wrong = f"{(int(final) + 1) % 200:03d}"
    text = completion.format(c=ref, wrong=f"{ref[:3]}>{wrong}", c_final=final, wrong_final=wrong)
    assert task.is_correct(text, ref) is correct
    assert task.student_reward(text, ref) == pytest.approx(reward)


@pytest.mark.parametrize("text,ok", [
    ("f^2(012)=045>067", True), ("f^9(012)=045", True),   # format-valid; well-posedness is judged later
    ("f^2(012)045", False), ("=045", False), ("f^2(012)=", False), ("f^2(012)=4>5", False), ("a=b=c", False),
])
def test_teacher_format_check(task, text, ok):
    assert (task.parse_teacher(text) is not None) is ok


def test_exact_labels_on_hand_made_cases(task):
    w = task.world
    truth = w.format_chain(w.chain(12, 3))
    wrong_step = truth[:-3] + f"{(int(truth[-3:]) + 1) % 200:03d}"
    cases = [
        ("f^3(012)", truth, True, True, "None"),
        ("f^3(012)", wrong_step, True, False, "Arithmetic"),
        ("f^3(012)", "001>002", True, False, "Logical_Fallacy"),
        ("f^9(012)", "001", False, False, "Ill_Posed"),
        ("f^0(012)", "001", False, False, "Ill_Posed"),
        ("f^3(250)", "001", False, False, "Ill_Posed"),
        ("f^(012)", "001", False, False, "Ambiguous"),
        ("f^3()", "001", False, False, "Ambiguous"),
        ("(012)", "001", False, False, "Ambiguous"),
    ]
    for q, a, wp, ok, err in cases:
        lab = task.exact_label(q, a)
        assert (lab["is_well_posed"], lab["is_correct"], lab["error_type"]) == (wp, ok, err), q


def test_tokenizer_round_trip_and_one_token_per_value():
    tok = build_tokenizer()
    s = "f^3(123)=045>067>199"
    ids = tok(s).input_ids
    assert ids[0] == tok.bos_token_id
    assert tok.decode(ids, skip_special_tokens=True) == s
    assert tok.convert_ids_to_tokens(ids)[5] == "123"


def test_question_diagnostics(task):
    """useful = an uncertain fact on a hard-train path and a correct final answer; shares over the pairs read."""
    from soar_lite.tasks.base import QAPair

    w = task.world
    hard = [w.problem(x, d) for x, d in w.hard_candidates[:1]]
    path = w.path(hard[0].meta["x"], hard[0].meta["depth"])
    v = next(v for v in path if w.kind[v] != COMMON)  # an uncertain fact on the hard-train path
    truth = w.format_chain(w.chain(v, 1))
    wrong = f"{(int(truth) + 1) % w.spec.n_values:03d}"
    off = next(x for x in range(w.spec.n_values) if w.kind[x] == COMMON)  # a common fact: never on a path's uncertain set
    q = w.question(v, 1)
    pairs = [QAPair(q, truth, ""), QAPair(q, wrong, ""), QAPair(w.question(off, 1), w.format_chain(w.chain(off, 1)), ""),
             QAPair("f^(12)", "001", "")]
    d = task.question_diagnostics(pairs, hard)
    assert d == {"n": 4, "useful_share": 0.25, "on_path_share": 0.5, "correct_share": 0.5, "well_posed_share": 0.75,
                 "unique_share": 0.75}
    assert task.question_diagnostics([], hard) == {"n": 0}
