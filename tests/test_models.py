"""Backend choice, adapter snapshots, per-row seeded sampling and the RLOO update on the shipped tiny model."""
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from soar_lite.models import choose_backend, load_policy, restore, snapshot
from soar_lite.rloo import make_optimizer, policy_gradient_step
from soar_lite.sampling import completion_logprobs, encode_prompts, sample

from conftest import TINY_LORA as CFG


def test_backend_choice_on_cpu():
    assert choose_backend("hf") == "hf"
    if not torch.cuda.is_available():
        assert choose_backend("auto") == "hf"
        with pytest.raises(RuntimeError, match="needs CUDA"):
            choose_backend("unsloth")
    with pytest.raises(ValueError):
        choose_backend("vllm")


def test_fresh_lora_equals_the_base_model(policy):
    ids = encode_prompts(policy.tokenizer, ["f^2(010)="])
    with torch.no_grad():
        a = policy.model(input_ids=torch.tensor(ids)).logits
        with policy.model.disable_adapter():
            b = policy.model(input_ids=torch.tensor(ids)).logits
    torch.testing.assert_close(a, b)


def test_snapshot_restore_round_trip(policy):
    snap = snapshot(policy)
    assert snap and all("lora" in n for n in snap)
    with torch.no_grad():
        for p in policy.trainable():
            p.add_(0.1)
    changed = snapshot(policy)
    assert any(not torch.equal(changed[n], snap[n]) for n in snap)
    restore(policy, snap)
    assert all(torch.equal(t, snap[n]) for n, t in snapshot(policy).items())


def test_a_shared_snapshot_restores_the_same_tensors_and_its_file_goes_after_the_block(policy):
    """Issue 34: pooled students get their baseline as one file per step (models.shared_snapshot), not one pickled
    copy per job; restoring from it equals restoring from memory, and the file is removed after the block."""
    from soar_lite.models import SharedSnapshot, shared_snapshot

    snap = snapshot(policy)
    moved = {n: t + 0.25 for n, t in snap.items()}
    with shared_snapshot(moved) as ref:
        assert isinstance(ref, SharedSnapshot) and Path(ref.path).exists()
        restore(policy, ref)
        assert all(torch.equal(t, moved[n]) for n, t in snapshot(policy).items())
        with shared_snapshot(snap) as other:  # another block: another file, never the first one's tensors
            assert other.path != ref.path
            restore(policy, other)
            assert all(torch.equal(t, snap[n]) for n, t in snapshot(policy).items())
    assert not Path(ref.path).exists() and not Path(other.path).exists()
    restore(policy, snap)


def test_a_shared_snapshot_without_room_in_dev_shm_goes_to_the_temporary_folder(policy, monkeypatch, tmp_path):
    """A container's /dev/shm is often 64 MB: a snapshot that does not fit twice goes to the temporary folder."""
    import shutil
    import tempfile
    from collections import namedtuple

    from soar_lite.models import shared_snapshot

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(1, 1, 0))
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    snap = snapshot(policy)
    with shared_snapshot(snap) as ref:
        assert Path(ref.path).parent == tmp_path and Path(ref.path).exists()
        restore(policy, ref)
    assert not Path(ref.path).exists()


def test_a_killed_writers_shared_snapshot_is_swept_and_a_live_ones_kept(policy, monkeypatch, tmp_path):
    import subprocess
    import sys
    import tempfile

    from soar_lite.models import shared_snapshot

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # a pid no process holds now
    dead = tmp_path / f"soar_lite_snapshot_{gone.pid}_{'0' * 32}.pt"
    live = tmp_path / f"soar_lite_snapshot_{os.getppid()}_{'1' * 32}.pt"
    dead.write_bytes(b"x")
    live.write_bytes(b"x")
    monkeypatch.setattr("soar_lite.models.Path", lambda p: tmp_path if p == "/dev/shm" else Path(p))
    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    with shared_snapshot(snapshot(policy)) as ref:
        assert Path(ref.path).parent == tmp_path
    assert not dead.exists() and live.exists()


def test_samples_do_not_depend_on_batch_composition(policy):
    prompts, keys = ["f^3(010)=", "f^1(020)="], ["a", "b"]
    together, _ = sample(policy, prompts, keys, 4, 1.0, 20, seed=3)
    alone, _ = sample(policy, prompts[1:], keys[1:], 4, 1.0, 20, seed=3)
    assert together[1] == alone[0]
    again, _ = sample(policy, prompts, keys, 4, 1.0, 20, seed=3)
    assert again == together
    other, _ = sample(policy, prompts, keys, 4, 1.0, 20, seed=4)
    assert other != together


def test_rloo_step_matches_hand_computed_loss_and_moves_logprobs(policy):
    """loss = -(1/N) sum_i A_i sum_t log p(y_it); with A = (+1, -1) the first completion becomes more
    likely and the second less likely after one step."""
    snap = snapshot(policy)
    tok = policy.tokenizer
    prompt = encode_prompts(tok, ["f^1(010)="])[0]
    comps = [tok("001").input_ids[1:] + [tok.eos_token_id], tok("002").input_ids[1:] + [tok.eos_token_id]]
    adv = np.array([1.0, -1.0])
    with torch.no_grad():
        lp, mask = completion_logprobs(policy.model, [prompt, prompt], comps, tok.pad_token_id)
    seq = (lp * mask).sum(-1)
    expected = float(-(torch.tensor(adv, dtype=torch.float32) * seq).sum() / 2)
    opt = make_optimizer(policy, 1e-2, 0.0)
    loss, kl = policy_gradient_step(policy, opt, [prompt, prompt], comps, adv, kl_coef=0.0, lr=1e-2, grad_clip=0.0)
    assert loss == pytest.approx(expected, rel=1e-5) and kl == 0.0
    with torch.no_grad():
        lp2, _ = completion_logprobs(policy.model, [prompt, prompt], comps, tok.pad_token_id)
    seq2 = (lp2 * mask).sum(-1)
    assert seq2[0] > seq[0] and seq2[1] < seq[1]
    restore(policy, snap)


def test_kl_term_is_zero_at_the_reference_and_positive_after_a_step(policy):
    snap = snapshot(policy)
    tok = policy.tokenizer
    prompt = encode_prompts(tok, ["f^1(010)="])[0]
    comps = [tok("001").input_ids[1:] + [tok.eos_token_id]] * 2
    opt = make_optimizer(policy, 1e-2, 0.0)
    _, kl0 = policy_gradient_step(policy, opt, [prompt] * 2, comps, np.array([1.0, 1.0]), kl_coef=1.0, lr=1e-2, grad_clip=0.0)
    _, kl1 = policy_gradient_step(policy, opt, [prompt] * 2, comps, np.array([1.0, 1.0]), kl_coef=1.0, lr=1e-2, grad_clip=0.0)
    assert kl0 == pytest.approx(0.0, abs=1e-6) and kl1 > 0
    restore(policy, snap)


def test_reference_logprob_is_high_for_known_facts_and_low_for_wrong_ones(policy, tiny_task):
    from soar_lite.student import reference_logprob
    from soar_lite.tasks.tiny import COMMON

    task = tiny_task
    w = task.world
    x = int(next(i for i in range(w.spec.n_values) if w.kind[i] == COMMON))
    right = w.format_chain(w.chain(x, 1))
    wrong = f"{(int(right) + 1) % w.spec.n_values:03d}"
    lp = reference_logprob(policy, task, [f"f^1({x:03d})"] * 2, [right, wrong])
    assert lp[0] > -0.1 and lp[1] < -2.0


# ---- the GPU path's pieces that run on CPU: generate sampler, logits_to_keep, micro-batching ----------------
def _chain_prompts(n: int) -> list[str]:
    return [f"f^{1 + i % 4}({(7 * i) % 200:03d})=" for i in range(n)]


def test_backend_line_names_backend_and_reason():
    from soar_lite.models import backend_line

    if not torch.cuda.is_available():
        line = backend_line("auto")
        assert "backend: hf" in line and "on cpu" in line and "no CUDA" in line
        assert "needs CUDA" in backend_line("unsloth")
    assert "model.backend=hf" in backend_line("hf")


def test_generate_sampler_matches_custom_sampler_greedy(policy):
    """model.generate (the unsloth path's sampler) and our KV-cache sampler decode greedily to the same ids."""
    prompts = _chain_prompts(6)
    keys = [str(i) for i in range(6)]
    _, custom = sample(policy, prompts, keys, 1, 0.0, 24, seed=0)
    policy.sampler = "generate"
    try:
        _, gen = sample(policy, prompts, keys, 1, 0.0, 24, seed=0)
        texts, sampled = sample(policy, prompts, keys, 3, 1.0, 24, seed=5)
        again, _ = sample(policy, prompts, keys, 3, 1.0, 24, seed=5)
    finally:
        policy.sampler = "custom"
    assert gen == custom
    eos = policy.tokenizer.eos_token_id
    for rows in sampled:  # well formed: EOS only as the last token, never padding after it
        for ids in rows:
            assert eos not in ids[:-1] and 0 < len(ids) <= 24
    assert again == texts  # seeded per batch


def test_logits_to_keep_scoring_equals_full_logits(policy):
    """completion_logprobs computes logits for the completion positions only; compare with the full softmax."""
    tok = policy.tokenizer
    prompts = encode_prompts(tok, _chain_prompts(4))
    comps = [tok("001>002").input_ids[1:] + [tok.eos_token_id], tok("003").input_ids[1:], [tok.eos_token_id],
             tok("004>005>006").input_ids[1:]]
    with torch.no_grad():
        lp, mask = completion_logprobs(policy.model, prompts, comps, tok.pad_token_id)
        for i, (p, c) in enumerate(zip(prompts, comps)):
            full = torch.log_softmax(policy.model(input_ids=torch.tensor([p + c])).logits[0].float(), -1)
            want = full[len(p) - 1:-1].gather(-1, torch.tensor(c).unsqueeze(-1)).squeeze(-1)
            torch.testing.assert_close(lp[i, :len(c)], want, atol=1e-4, rtol=1e-4)
            assert mask[i].sum() == len(c)


def test_micro_batched_rloo_step_equals_one_batch(policy):
    """model.train_micro_batch only bounds memory: gradient accumulation gives the same update."""
    snap = snapshot(policy)
    tok = policy.tokenizer
    prompts = encode_prompts(tok, _chain_prompts(5))
    comps = [tok(f"{10 * i:03d}").input_ids[1:] + [tok.eos_token_id] for i in range(5)]
    adv = np.array([1.0, -0.5, 0.25, -0.75, 0.0])
    after = {}
    for mb in (0, 2):
        restore(policy, snap)
        policy.train_micro_batch = mb
        opt = torch.optim.SGD(policy.trainable(), lr=1.0)  # SGD: the update is the gradient itself
        after[mb] = policy_gradient_step(policy, opt, prompts, comps, adv, kl_coef=0.5, lr=1.0, grad_clip=0.0)
        after[mb] = (after[mb], snapshot(policy))
    policy.train_micro_batch = 0
    restore(policy, snap)
    (loss0, kl0), w0 = after[0]
    (loss2, kl2), w2 = after[2]
    assert loss2 == pytest.approx(loss0, rel=1e-5, abs=1e-7) and kl2 == pytest.approx(kl0, abs=1e-7)
    assert any(not torch.equal(w0[name], snap[name]) for name in w0)  # the step did move the adapter
    for name in w0:
        torch.testing.assert_close(w2[name], w0[name], atol=1e-6, rtol=1e-5)


def test_generate_sampler_samples_the_full_distribution(policy):
    """No top-k/top-p truncation sneaks in from the library's defaults: on a shaky fact (T=1 mass spread over
    ~200 values) 1,000 one-token samples hit far more than top_k=50 distinct values, as our sampler does."""
    from soar_lite.sampling import generate_ids, generate_ids_hf
    from soar_lite.tasks.tiny import SHAKY, TinyWorld

    w = TinyWorld()
    x = int(next(i for i in range(w.spec.n_values) if w.kind[i] == SHAKY))
    prompt = encode_prompts(policy.tokenizer, [f"f^1({x:03d})="])[0]
    ours = generate_ids(policy.model, policy.tokenizer, [prompt] * 1000, list(range(1000)), 1.0, 1)
    theirs = generate_ids_hf(policy.model, policy.tokenizer, [prompt] * 1000, list(range(1000)), 1.0, 1)
    n_ours, n_theirs = len({t[0] for t in ours}), len({t[0] for t in theirs})
    assert n_ours > 150 and n_theirs > 150


def test_gradient_checkpointing_gives_the_same_step(policy):
    """model.gradient_checkpointing trades compute for memory only: same loss, same update, and sampling works."""
    import dataclasses

    ckpt_policy = load_policy(dataclasses.replace(CFG, gradient_checkpointing=True), seed=0)
    tok = policy.tokenizer
    prompts = encode_prompts(tok, _chain_prompts(3))
    comps = [tok(f"{10 * i:03d}").input_ids[1:] + [tok.eos_token_id] for i in range(3)]
    adv = np.array([1.0, -0.5, -0.5])
    snap = snapshot(policy)
    results = []
    for pol in (policy, ckpt_policy):
        restore(pol, snap)
        loss, _ = policy_gradient_step(pol, torch.optim.SGD(pol.trainable(), lr=1.0), prompts, comps, adv,
                                       kl_coef=0.1, lr=1.0, grad_clip=0.0)
        results.append((loss, snapshot(pol)))
    restore(policy, snap)
    assert results[1][0] == pytest.approx(results[0][0], rel=1e-5)
    for name, t in results[0][1].items():
        torch.testing.assert_close(results[1][1][name], t, atol=1e-6, rtol=1e-5)
    texts, _ = sample(ckpt_policy, _chain_prompts(2), ["a", "b"], 2, 1.0, 8, seed=0)
    assert len(texts) == 2 and all(len(t) == 2 for t in texts)


def test_unsloth_path_follows_its_api_with_a_stand_in(monkeypatch):
    """No GPU here, so a stand-in `unsloth` module (plain transformers + peft underneath) records how the unsloth
    path calls FastLanguageModel: loading and LoRA arguments, UNSLOTH_RETURN_LOGITS set before the import,
    for_inference before every generation and for_training before every update, and generation through
    `generate`. It checks our side of the contract, not unsloth itself."""
    import dataclasses
    import os
    import sys
    import types

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from soar_lite import models

    calls = []

    class FastLanguageModel:
        @staticmethod
        def from_pretrained(model_name, dtype, load_in_4bit, max_seq_length):
            calls.append(("from_pretrained", load_in_4bit, max_seq_length, os.environ.get("UNSLOTH_RETURN_LOGITS")))
            return AutoModelForCausalLM.from_pretrained(model_name, dtype=dtype), AutoTokenizer.from_pretrained(model_name)

        @staticmethod
        def get_peft_model(model, r, lora_alpha, lora_dropout, target_modules, bias, random_state, use_gradient_checkpointing):
            calls.append(("get_peft_model", r, lora_alpha, tuple(target_modules), use_gradient_checkpointing))
            return get_peft_model(model, LoraConfig(r=r, lora_alpha=lora_alpha, target_modules=list(target_modules)))

        @staticmethod
        def for_inference(model):
            calls.append("for_inference")

        @staticmethod
        def for_training(model, use_gradient_checkpointing=True):
            calls.append(("for_training", use_gradient_checkpointing))

    monkeypatch.setitem(sys.modules, "unsloth", types.SimpleNamespace(FastLanguageModel=FastLanguageModel))
    monkeypatch.delenv("UNSLOTH_RETURN_LOGITS", raising=False)
    cfg = dataclasses.replace(CFG, gradient_checkpointing=True, max_seq_length=512)
    pol = models._load_unsloth(cfg, models.resolve_model_path("tiny"), torch.float32, seed=0, device="cpu")
    pol.sampler = models._sampler_for("auto", pol.backend)
    pol.gradient_checkpointing = True
    assert pol.backend == "unsloth" and pol.sampler == "generate"
    assert calls[:2] == [("from_pretrained", False, 512, "1"),
                         ("get_peft_model", 8, 16, tuple(CFG.target_modules), "unsloth")]
    del calls[:]
    _, comp = sample(pol, _chain_prompts(2), ["a", "b"], 2, 1.0, 8, seed=0)
    tok = pol.tokenizer
    prompts = encode_prompts(tok, _chain_prompts(2))
    policy_gradient_step(pol, make_optimizer(pol, 1e-3, 0.0), prompts, [comp[0][0], comp[1][0]], np.array([1.0, -1.0]),
                         kl_coef=0.1, lr=1e-3, grad_clip=1.0)
    assert calls == ["for_inference", ("for_training", True), "for_inference"]
