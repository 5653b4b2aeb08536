"""The tiny world's ground truth, text format, verifier, shaped reward and exact labels."""
import pytest

from soar_lite.tasks.tiny import COMMON, CONFUSED, SHAKY, UNDEFINED, TinyWorld, TinyWorldSpec
from soar_lite.tasks.tiny.pretrain import build_tokenizer


@pytest.fixture(scope="module")
def task(tiny_task):
    return tiny_task


def test_world_is_deterministic_and_has_enough_hard_candidates(task):
    w2 = TinyWorld(TinyWorldSpec())
    assert (task.world.f == w2.f).all() and (task.world.kind == w2.kind).all()
    assert len(task.world.hard_candidates) >= 100  # hard by design, the probe keeps (nearly) all: >= 50 hard-test
    assert set(task.world.kind.tolist()) == {COMMON, SHAKY, CONFUSED, UNDEFINED}


def test_hard_candidates_match_their_definition(task):
    """Hard by design: well posed, >= 1 confused piece (greedy fails), on-path probability <= 1e-6 (sampling fails);
    and every well-posed chain of the same depths with those properties is a candidate."""
    w, s = task.world, task.world.spec
    cands = dict(w.hard_candidates)  # one per start: the shortest hard chain
    assert len(cands) == len(w.hard_candidates)
    for x in range(s.n_values):
        hard = [d for d in range(1, s.max_depth + 1)
                if d >= s.hard_min_depth and w.defined(x, d) and w.n_uncertain(x, d)[1] >= 1
                and w.on_path_probability(x, d) <= s.hard_max_on_path]
        assert cands.get(x) == (min(hard) if hard else None), x
        assert all(w.is_hard_candidate(x, d) for d in hard)
    for x, d in cands.items():
        assert w.on_path_probability(x, d) <= 1e-6


def test_hard_test_shares_facts_with_hard_train_but_holds_no_sub_chain(task):
    """The split of the whole pool (the probe keeps every candidate of a world hard by design): no hard-test chain
    inside a hard-train chain, and most hard-test uncertain facts on hard-train paths (shared skills)."""
    from soar_lite.probe import split_train_test

    probs = task.problems("hard-candidates")
    train, test = split_train_test(probs, 0.5, 1, task.split_groups(probs))
    shared = task.shared_structure(train, test)
    assert shared["test_subchains_of_train"] == 0.0
    assert shared["test_pieces_on_train_paths"] > 0.5


@pytest.mark.parametrize("kind,accuracy", [(COMMON, 1.0), (SHAKY, 0.15), (CONFUSED, 0.2), (UNDEFINED, 0.0)])
def test_corpus_accuracy_per_kind(kind, accuracy):
    w = TinyWorld()
    got = w.piece_accuracy_of_corpus()[w.kind == kind]
    assert len(got) and got.tolist() == pytest.approx([accuracy] * len(got))


def test_on_path_probability_is_the_product_of_piece_accuracies_along_the_path():
    import numpy as np
    w = TinyWorld()
    acc = w.piece_accuracy_of_corpus()
    for x, d in w.hard_candidates[:20] + [(x, 3) for x in range(0, w.spec.n_values, 17)]:
        assert w.on_path_probability(x, d) == pytest.approx(float(np.prod(acc[w.path(x, d)])))
    x = next(x for x in range(w.spec.n_values) if w.kind[x] == SHAKY)
    assert w.on_path_probability(x, 1) == pytest.approx(0.15)
    assert w.on_path_probability(x, 1, accuracy=np.full(w.spec.n_values, 0.5)) == pytest.approx(0.5)


def test_holes_make_questions_ill_posed_and_stay_out_of_every_pool(task):
    w = task.world
    hole = next(x for x in range(w.spec.n_values) if w.kind[x] == UNDEFINED)
    assert not w.defined(hole, 1)
    lab = task.exact_label(w.question(hole, 1), "001")
    assert (lab["is_well_posed"], lab["is_correct"], lab["error_type"]) == (False, False, "Ill_Posed")
    assert task.parse_question(w.question(hole, 1)) == (hole, 1)  # it parses: the world, not the format, says no
    for pool in ("hard-candidates", "stones", "easy", "all"):
        assert all(p.meta["defined"] for p in task.problems(pool)), pool
    assert w.piece_distribution(hole).max() == pytest.approx(1 / w.spec.n_values)  # the corpus makes a value up


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


@pytest.mark.parametrize("completion,correct,lucky,reward", [
    ("{c}", True, False, 1.0),
    ("{wrong}", False, False, 10 / 120),
    ("{c_final}>{wrong_final}", False, False, 10 / 120),  # reference inside the chain, not the answer (App. B.3)
    ("{wrong_first}>{c_final}", False, True, 10 / 120),  # the right final value through a wrong chain: luck, no credit
    ("garbage", False, False, 0.0),
    ("", False, False, 0.0),
    ("12>345", False, False, 0.0),                    # malformed chain
])
def test_verifier_checks_the_whole_chain_and_shaped_reward(task, completion, correct, lucky, reward):
    w = task.world
    x = next(x for x in range(w.spec.n_values) if w.defined(x, 2))
    ref = w.format_chain(w.chain(x, 2))
    final = ref[-3:]
    wrong = f"{(int(final) + 1) % w.spec.n_values:03d}"
    wrong_first = f"{(int(ref[:3]) + 1) % w.spec.n_values:03d}"
    text = completion.format(c=ref, wrong=f"{ref[:3]}>{wrong}", c_final=final, wrong_final=wrong,
                             wrong_first=wrong_first)
    assert task.is_correct(text, ref) is correct
    assert task.lucky(text, ref) is lucky
    assert task.student_reward(text, ref) == pytest.approx(reward)


@pytest.mark.parametrize("text,ok", [
    ("f^2(012)=045>067", True), ("f^9(012)=045", True),   # format-valid; well-posedness is judged later
    ("f^2(012)045", False), ("=045", False), ("f^2(012)=", False), ("f^2(012)=4>5", False), ("a=b=c", False),
])
def test_teacher_format_check(task, text, ok):
    assert (task.parse_teacher(text) is not None) is ok


def test_exact_labels_on_hand_made_cases(task):
    w = task.world
    x = next(x for x in range(w.spec.n_values) if w.defined(x, 3))
    q = w.question(x, 3)
    truth = w.format_chain(w.chain(x, 3))
    wrong_step = truth[:-3] + f"{(int(truth[-3:]) + 1) % w.spec.n_values:03d}"
    lucky = f"{(int(truth[:3]) + 1) % w.spec.n_values:03d}" + truth[3:]
    cases = [
        (q, truth, True, True, "None"),
        (q, wrong_step, True, False, "Arithmetic"),
        (q, lucky, True, False, "Arithmetic"),  # the right final value through a wrong chain is not correct
        (q, "001>002", True, False, "Logical_Fallacy"),
        ("f^0(012)", "001", False, False, "Ill_Posed"),
        ("f^3(256)", "001", False, False, "Ill_Posed"),  # outside the domain 0..255
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
    """useful = an uncertain fact on a hard-train path and a correct answer; shares over the pairs read."""
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


def test_the_shipped_model_was_built_for_this_world():
    """The shipped weights' pretrain_info.json records the spec they were pretrained on: it must be today's
    TinyWorldSpec (a spec change without `make tiny-model` would leave the model in another world)."""
    import dataclasses
    import json

    from soar_lite.tasks.tiny import TINY_MODEL_DIR

    info = json.loads((TINY_MODEL_DIR / "pretrain_info.json").read_text())
    spec = {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(TinyWorldSpec()).items()}
    assert info["world"] == spec


def test_make_tiny_model_is_deterministic(tmp_path):
    """`make tiny-model`'s recipe, shortened: two builds with one seed hold equal tensors and equal logs."""
    import torch
    from safetensors.torch import load_file

    from soar_lite.tasks.tiny.pretrain import pretrain

    infos = []
    for name in ("a", "b"):
        infos.append(pretrain(tmp_path / name, steps=12, batch=8, lr=3e-3, seed=0, spec=TinyWorldSpec(), log_every=4,
                              threads=1, hidden=32, layers=1, heads=2))
    a, b = (load_file(tmp_path / n / "model.safetensors") for n in ("a", "b"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [r["loss"] for r in infos[0]["log"]] == [r["loss"] for r in infos[1]["log"]]
