"""sampling.py and the speed switches of the inference / training path (model.merge_lora_for_inference,
model.compact_finished_rows, model.length_sorted_micro_batch): each is checked against the path it replaces."""
import numpy as np
import pytest
import torch

from soar_lite.models import restore, snapshot
from soar_lite.rloo import micro_batches, policy_gradient_step
from soar_lite.sampling import encode_prompts, generate_ids, length_sorted_chunks, row_seed, sample


@pytest.fixture()
def trained(policy):
    """The policy with non-zero LoRA deltas (random B), restored afterwards."""
    start = snapshot(policy)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in policy.model.named_parameters():
            if "lora_B" in name:
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
    yield policy
    restore(policy, start)


def _prompts(n):
    return [f"f^{1 + i % 5}({(13 * i) % 200:03d})=" for i in range(n)]


def _switches(policy, merge, compact, sort):
    policy.merge_for_inference, policy.compact_rows, policy.sorted_micro_batch = merge, compact, sort


def test_merged_inference_restores_base_and_adapter_tensors_bit_for_bit(trained):
    before = {n: p.detach().clone() for n, p in trained.model.named_parameters()}
    ids_before = {n: p.data_ptr() for n, p in trained.model.named_parameters()}
    _switches(trained, True, True, 32)
    snap = snapshot(trained)
    sample(trained, _prompts(8), [str(i) for i in range(8)], 4, 1.0, 12, seed=1)
    after = dict(trained.model.named_parameters())
    assert all(torch.equal(before[n], after[n]) for n in before)  # base and adapter, every tensor
    assert all(after[n].data_ptr() == ids_before[n] for n in before)  # the same storage, not a copy
    assert all(torch.equal(snap[n], t) for n, t in snapshot(trained).items())


def test_merged_forward_equals_the_adapter_forward(trained):
    ids = torch.tensor([encode_prompts(trained.tokenizer, ["f^3(012)=012>"])[0]])
    with torch.no_grad():
        plain = trained.model(input_ids=ids).logits
        with trained.merged():
            merged = trained.model(input_ids=ids).logits
        with trained.model.disable_adapter():
            base = trained.model(input_ids=ids).logits
    assert (plain - base).abs().max() > 1e-3  # the adapter matters
    torch.testing.assert_close(merged, plain, atol=1e-4, rtol=1e-4)


def test_samples_are_the_same_with_every_switch_on_or_off(trained):
    prompts, keys = _prompts(24), [f"k{i}" for i in range(24)]
    _switches(trained, False, False, 0)
    old = sample(trained, prompts, keys, 12, 1.0, 16, seed=5)[1]
    _switches(trained, True, True, 32)
    new = sample(trained, prompts, keys, 12, 1.0, 16, seed=5)[1]
    same = sum(a == b for ra, rb in zip(old, new) for a, b in zip(ra, rb))
    assert same == 24 * 12


def test_compaction_drops_finished_rows_without_changing_any_row(trained):
    tok = trained.tokenizer
    enc = encode_prompts(tok, _prompts(64))
    seeds = [row_seed(3, str(i), 0) for i in range(64)]
    full = generate_ids(trained.model, tok, enc, seeds, 1.0, 20, compact=False)
    compact = generate_ids(trained.model, tok, enc, seeds, 1.0, 20, compact=True)
    assert compact == full
    assert len({len(c) for c in full}) > 1  # rows finished at different steps: compaction did drop rows


@pytest.mark.parametrize("lengths, size, expected", [
    ([3, 9, 5, 9, 1], 2, [[1, 3], [2, 0], [4]]),
    ([3, 9, 5], 0, [[0, 1, 2]]),
    ([3, 9, 5], 8, [[0, 1, 2]]),
    ([], 4, []),
])
def test_length_sorted_chunks(lengths, size, expected):
    assert [c.tolist() for c in length_sorted_chunks(lengths, size)] == expected


def test_micro_batches_respect_the_memory_cap_and_the_explicit_size():
    class P:
        train_micro_batch, sorted_micro_batch = 0, 0
    p = P()
    assert [c.tolist() for c in micro_batches(p, [1, 2, 3])] == [[0, 1, 2]]
    p.sorted_micro_batch = 2
    assert [c.tolist() for c in micro_batches(p, [1, 3, 2])] == [[1, 2], [0]]
    p.train_micro_batch = 1  # a memory cap below the sorting size wins
    assert [len(c) for c in micro_batches(p, [1, 3, 2])] == [1, 1, 1]
    assert [c.tolist() for c in micro_batches(p, [1, 3, 2], micro_batch=2)] == [[0, 1], [2]]


def test_length_sorted_rloo_step_equals_the_one_pass_step(trained):
    tok = trained.tokenizer
    prompts = encode_prompts(tok, _prompts(40))
    comps = [p[1:][: 2 + i % 9] + [tok.eos_token_id] for i, p in enumerate(prompts)]
    adv = np.random.default_rng(0).normal(size=40)
    start = snapshot(trained)
    results = {}
    for sort in (0, 8):
        restore(trained, start)
        _switches(trained, True, True, sort)
        opt = torch.optim.SGD(trained.trainable(), lr=1e-2)  # SGD: Adam's first step is sign(g), float noise flips it
        policy_gradient_step(trained, opt, prompts, comps, adv, kl_coef=0.05, lr=1e-2, grad_clip=0.0)
        results[sort] = snapshot(trained)
    assert all(torch.allclose(results[0][n], results[8][n], atol=1e-6) for n in results[0])
    assert any(not torch.equal(results[0][n], start[n]) for n in start)  # the step moved the adapter


def test_length_sorted_scoring_equals_unsorted(trained, tiny_task):
    from soar_lite.student import reference_logprob

    w = tiny_task.world
    probs = [w.problem(x, 1 + x % 6) for x in range(60)]
    qs, refs = [p.question for p in probs], [p.answer for p in probs]
    _switches(trained, False, False, 0)
    old = reference_logprob(trained, tiny_task, qs, refs, batch_size=256)
    _switches(trained, True, True, 16)
    new = reference_logprob(trained, tiny_task, qs, refs, batch_size=256)
    np.testing.assert_allclose(new, old, atol=1e-5)


def test_scoring_no_questions_gives_an_empty_array(trained, tiny_task):
    from soar_lite.student import reference_logprob

    assert reference_logprob(trained, tiny_task, [], []).shape == (0,)


def test_a_prompt_rendered_with_its_bos_gets_no_second_bos(policy):
    """REVIEW P3: a chat-template prompt starts with the BOS text; encoding must not add another BOS."""
    from soar_lite.sampling import encode_prompts

    tok = policy.tokenizer
    plain, rendered = encode_prompts(tok, ["f^3(001)=", tok.bos_token + "f^3(001)="])
    assert plain == rendered and plain.count(tok.bos_token_id) == 1
    assert tok(tok.bos_token + "f^3(001)=").input_ids.count(tok.bos_token_id) == 2  # what plain tokenizing does


def test_trls_selective_log_softmax_equals_the_plain_gather_minus_logsumexp():
    """completion_logprobs takes its log-probabilities from TRL (issue 33, item 7: trl earns its place); on CPU they
    equal the hand-written form bit for bit, at the tiny model's and a real vocabulary's width."""
    import torch
    from trl.trainer.utils import selective_log_softmax

    g = torch.Generator().manual_seed(0)
    for vocab in (40, 49152):
        logits = torch.randn(3, 7, vocab, generator=g) * 4
        targets = torch.randint(0, vocab, (3, 7), generator=g)
        plain = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
        assert torch.equal(selective_log_softmax(logits, targets), plain)
