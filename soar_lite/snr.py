"""Predict before you spend: the teacher-gradient signal-to-noise ratio per outer step (`soar-lite snr PARAMS`).

The teacher's update is one RLOO policy-gradient step per outer step. Whether it can learn in `meta.outer_steps`
depends on how much of that step's gradient is signal: with K independent draws g_1..g_K of the gradient of the
*untrained* teacher (each a full outer step: g*n samples, g*r inner-loop students, the real reward, the package's
advantages and normalisation), the SNR per step is

    SNR = |E g|^2 / E|g - E g|^2,

estimated without bias from the draws' Gram matrix G_ij = <g_i, g_j>: noise = (tr G - K |mean g|^2) / (K - 1) and
signal = |mean g|^2 - noise / K. Over T steps the signal of the summed gradient grows as T^2 and its noise as T, so
about 1 / SNR steps are needed before the accumulated signal exceeds the noise (a lower bound on what learning
takes: Adam, the KL term and a moving target all cost more). The 95% interval is a jackknife over the draws.

Measured on the tiny world (TEACHER_SIGNAL.md): g = 4 datasets of n = 64 gives ~0.001 per step; the same 256 samples
as g = 64 datasets of n = 4 give ~30x more. On a GPU the same command prices the paper world before its GPU-hours
are spent. Our addition; no peer package estimates this.

The gradient is taken over the LoRA parameters only, with the KL term left out (at the untrained teacher its
gradient is exactly 0). Gradients are kept in memory as float32 (K x trainable parameters).
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .seeds import derive, stream_key


def gram_snr(gram: np.ndarray) -> tuple[float, float, float]:
    """(snr, signal, noise) from the Gram matrix of K >= 2 gradient draws (module docstring)."""
    gram = np.asarray(gram, dtype=np.float64)
    k = len(gram)
    if k < 2:
        raise ValueError("the SNR needs at least 2 gradient draws")
    mean_sq = gram.sum() / k**2
    noise = (np.trace(gram) - k * mean_sq) / (k - 1)
    signal = mean_sq - noise / k
    return (signal / noise if noise > 0 else np.nan), float(signal), float(noise)


def snr_with_interval(gram: np.ndarray) -> dict:
    """The SNR, its jackknife 95% interval (normal), and the outer steps 1 / SNR implies."""
    from scipy import stats

    snr, signal, noise = gram_snr(gram)
    k = len(gram)
    if k >= 3:
        loo = np.array([gram_snr(np.delete(np.delete(gram, i, 0), i, 1))[0] for i in range(k)])
        se = float(np.sqrt((k - 1) / k * np.sum((loo - loo.mean()) ** 2)))
    else:
        se = np.nan
    half = float(stats.norm.ppf(0.975)) * se
    return {"snr": snr, "ci_low": snr - half, "ci_high": snr + half, "signal": signal, "noise": noise, "draws": k,
            "steps_for_snr_1": (1.0 / snr) if snr > 0 else np.inf}


@dataclass
class SNRResult:
    g: int
    n: int
    r: int
    draws: int
    snr: float
    ci_low: float
    ci_high: float
    steps_for_snr_1: float
    reward_mean: float  # mean dataset reward R_k over the draws
    reward_sd_between: float  # SD of R_k within a draw (what the advantages see)
    seconds: float

    def row(self) -> dict:
        return dict(self.__dict__)


def teacher_gradient(policy, prompt_ids, completion_ids, advantages) -> np.ndarray:
    """The flattened gradient of the RLOO policy-gradient loss over the trainable (LoRA) parameters."""
    from .rloo import accumulate_gradient

    policy.for_training()
    for p in policy.trainable():
        p.grad = None
    accumulate_gradient(policy, prompt_ids, completion_ids, advantages, kl_coef=0.0)
    flat = np.concatenate([p.grad.detach().float().cpu().numpy().ravel() for p in policy.trainable()])
    for p in policy.trainable():
        p.grad = None
    policy.for_inference()
    return flat


def estimate(cfg, task, hard_train, grouping: tuple[int, int, int], draws: int, log=print) -> SNRResult:
    """K = `draws` gradient draws of the untrained teacher at (g, n, r), each a full outer step with the real reward
    (MetaTrainer's own sampler, inner loop and reward), and the SNR they give. Seeds: (run seed, meta_train,
    snr_*, g, n, r, draw); the draws are independent of every meta-training run."""
    import dataclasses

    from .rundir import MetaLayout, report_progress
    from .soar import MetaTrainer
    from .student import reward_questions
    from .teacher import dataset_advantages

    g, n, r = grouping
    meta = dataclasses.replace(cfg.meta, g=g, n=n, r=r)
    trainer = MetaTrainer(dataclasses.replace(cfg, meta=meta), task, hard_train, MetaLayout(cfg.run_dir / "snr"),
                          teacher="grounded", log=log)

    def seed(role, *idx):
        return derive(cfg.seed, "meta_train", role, g, n, r, *idx)

    t0, grads, rewards = time.time(), [], []
    for d in range(draws):
        sample = trainer.sample_pairs(lambda rd, d=d: (stream_key("snr_teacher", g, n, r, d, rd),
                                                       seed("snr_teacher", d, rd)))
        datasets = [sample.pairs[k * n:(k + 1) * n] for k in range(g)]
        q_r = reward_questions(hard_train, meta.M, seed("snr_questions", d))
        rewards_kj, *_ = trainer.grounded_rewards(
            datasets, q_r, meta.inner_steps, item_key=lambda k, i, d=d: stream_key("snr_question", d, k, i),
            student_seed=lambda k, j, d=d: seed("snr_student", d, k, j), eval_seed=seed("snr_score", d),
            keep_trained=False)
        r_k = rewards_kj.mean(axis=1)
        rewards.append(r_k)
        adv = dataset_advantages(r_k, [n] * g, meta.teacher.normalize_advantages)
        grads.append(teacher_gradient(trainer.teacher, *sample.update_rows(adv)))
        log(f"snr g={g} n={n} r={r}: draw {d + 1}/{draws}, R_k {r_k.mean():+.4f} ± {r_k.std():.4f} "
            f"({time.time() - t0:.0f} s)")
        report_progress(cfg.layout, "meta_train", f"snr_g{g}_n{n}_r{r}", d + 1, draws, "outer steps")
    gmat = np.stack(grads)
    est = snr_with_interval(gmat @ gmat.T)
    rewards = np.stack(rewards)
    return SNRResult(g=g, n=n, r=r, draws=draws, snr=est["snr"], ci_low=est["ci_low"], ci_high=est["ci_high"],
                     steps_for_snr_1=est["steps_for_snr_1"], reward_mean=float(rewards.mean()),
                     reward_sd_between=float(rewards.std(axis=1).mean()), seconds=round(time.time() - t0, 1))


def groupings(cfg) -> list[tuple[int, int, int]]:
    """The run's grouping (meta.g, n, r) and the paper's (meta.paper_grouping), each once."""
    out = [(cfg.meta.g, cfg.meta.n, cfg.meta.r), tuple(cfg.meta.paper_grouping)]
    return list(dict.fromkeys(out))
