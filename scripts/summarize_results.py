"""Print the README's results block (markdown) from a rendered run's tables, so no number is typed by hand.

    python scripts/summarize_results.py results/tiny-full
"""
import json
import sys
from pathlib import Path

import pandas as pd

from soar_lite.stats import mean_sd


def main(run: Path) -> None:
    t = run / "tables"
    pk = pd.read_csv(t / "pass_at_k.csv")
    order = list(dict.fromkeys(pk.method))
    ks = sorted(pk.k.unique())
    print("| method | n | " + " | ".join(f"pass@{k} (%)" for k in ks) + " |")
    print("|---|---|" + "---|" * len(ks))
    for m in order:
        cells = [mean_sd(pk[(pk.method == m) & (pk.k == k)].pass_at_k).rsplit(" (", 1)[0] for k in ks]
        print(f"| {m} | {pk[(pk.method == m)].seed.nunique()} | " + " | ".join(cells) + " |")
    print()
    c = pd.read_csv(t / "comparisons.csv")
    kmax = int(c.k.max())
    print(f"| comparison (pass@{kmax}) | difference (points) | 95% CI | test | p | n | power for the paper's ratio |")
    print("|---|---|---|---|---|---|---|")
    for _, r in c[c.k == kmax].iterrows():
        print(f"| {r.comparison} | {100 * r.difference:+.1f} | {100 * r.ci_low:+.1f} to {100 * r.ci_high:+.1f} | {r.test} | "
              f"{r.p_value:.2g} | {r.n_a}/{r.n_b} | {r.power:.2f} ({r.paper_ratio:.2f}x) |")
    print()
    for d in sorted(run.glob("meta*")):
        m = [json.loads(line) for line in (d / "metrics.jsonl").read_text().splitlines()]
        print(f"- {d.name}: {len(m)} outer steps, {m[-1]['promotions']} promotions, tau {m[-1]['tau']:.4f}, "
              f"reward first/last 5 steps {pd.Series([r['reward_mean'] for r in m[:5]]).mean():+.4f} / "
              f"{pd.Series([r['reward_mean'] for r in m[-5:]]).mean():+.4f}, teacher KL from its start at the last step "
              f"{m[-1]['teacher_kl']:.2g}, format rejections at the last step {m[-1]['rejected']}")
    ev = json.loads((run / "evaluate" / "summary.json").read_text())
    print(f"- skipped: {ev['skipped']}")
    st = pd.read_csv(run / "evaluate" / "stops.csv")
    s = st.groupby("method")[["stop_step", "window_points"]].agg(["mean", "min", "max"])
    print(s.to_string())


if __name__ == "__main__":
    main(Path(sys.argv[1]))
