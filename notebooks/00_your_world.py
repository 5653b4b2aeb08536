# %% [markdown]
# # 00 · Your own world: write a Task, probe it, run one outer step, and see where each method is called
#
# What this tutorial shows: a world is a `soar_lite.tasks.Task` -- prompts, a format check for the teacher's
# output, an answer check for the student's, the shaped reward, and pools of problems. Here one is written in a
# cell (the tiny world's lookups, with a share of inputs made undefined so that some questions are ill posed),
# registered for this kernel, probed for its fail@k hard set, and run for one outer step of Algorithm 1. Every call
# of a Task method is logged with the function that made it, so the last table shows which part of SOAR uses which
# method. It ends with findings computed from what ran.
#
# In a notebook, `register_task` is enough: everything runs in this kernel. For `soar-lite run` -- whose stages run
# in other processes -- put the class in a module and name it `module:Factory` in the params
# (`examples/partial_world/` is this world as such a module, with its params file; docs/your-world.md).

# %% tags=["parameters"]
# papermill parameters (literals only)
results_dir = "results"  # where the tutorial's run directory goes
undefined_share = 0.15  # share of the world's inputs that have no value (questions through them are ill posed)
probe_samples = 16  # fail@k: samples per problem
install_spec = ""  # Colab: a pip spec for soar_lite; empty: the soar_lite wheel or checkout in the working directory

# %% tags=["setup"]
# Set-up: install soar_lite if this kernel lacks it (Colab).
import glob, importlib.util, os, shutil, subprocess, sys  # noqa: E401
_have = importlib.util.find_spec("soar_lite")
if _have is None or _have.origin is None:  # a clone named soar_lite in the working directory is a namespace package
    _clones = [os.path.dirname(p) for p in sorted(glob.glob("*/pyproject.toml") + glob.glob("/content/*/pyproject.toml"))
               if 'name = "soar-lite"' in open(p).read()]  # a clone of this repository, under any name
    found = ["./" + w for w in sorted(glob.glob("soar_lite-*.whl"))] + [c if c[0] == "/" else "./" + c for c in _clones]
    spec = install_spec or (found[0] + ("[gpu]" if shutil.which("nvidia-smi") else "") if found else "")
    if not spec:
        raise ImportError("soar_lite is not installed: upload its wheel (make wheel -> dist/soar_lite-*.whl) or clone "
                          "the repository into the working directory, or set install_spec to a pip spec")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", spec], check=True)
    importlib.invalidate_caches()
os.environ.setdefault("HF_HUB_OFFLINE", "1")
from IPython.display import display  # noqa: E402
from soar_lite.stages.common import findings_markdown  # noqa: E402

# %% [markdown]
# ## 1. The world: a Task subclass
# A Task must say how the student is prompted (`student_prompt`), what the teacher is asked (`teacher_prompt`), how
# a teacher completion becomes a question and answer or is rejected (`parse_teacher`: App. B.2's format check), how
# a student's answer is read and checked (`extract_answer`, `is_correct`), the student's RL reward
# (`student_reward`: App. B.3), and its pools of problems (`problems`). Optional: `exact_label` (a programmatic
# judge: well-posed, correct), `question_diagnostics` (shares logged per outer step), `split_groups`.
# This world reuses the tiny world (and the shipped tiny model, which knows its facts) and changes two methods.

# %%
import collections

import numpy as np
from soar_lite.tasks import register_task
from soar_lite.tasks.base import question_label
from soar_lite.tasks.tiny import TinyTask, TinyWorld

CALLS = collections.defaultdict(collections.Counter)  # Task method -> the functions that called it


class HolesWorld(TinyTask):
    """The tiny world with holes: a question whose path passes through an undefined input has no answer."""

    name = "holes"
    world_report = False

    def __init__(self, share: float, task_cfg):
        super().__init__(TinyWorld(), task_cfg.student_max_new_tokens, task_cfg.teacher_max_new_tokens)
        rng = np.random.default_rng(1)
        n = self.world.spec.n_values
        self.undefined = {int(x) for x in rng.choice(n, size=round(share * n), replace=False)}

    def defined(self, x, depth):
        return not any(v in self.undefined for v in self.world.path(x, depth))

    def problems(self, pool):  # the probe's pools: well-posed problems only
        return [p for p in super().problems(pool) if self.defined(p.meta["x"], p.meta["depth"])]

    def exact_label(self, question, answer):  # the world's own judge: a question through a hole is ill posed
        label = super().exact_label(question, answer)
        if label["is_well_posed"] and not self.defined(*self.parse_question(question)):
            return question_label(False, False, "Ill_Posed", "N/A")
        return label


def logged(cls):
    """Record, for every call of a Task method, which function called it (for the table at the end)."""
    for name in ("student_prompt", "teacher_prompt", "parse_teacher", "extract_answer", "is_correct", "student_reward",
                 "student_rewards", "problems", "exact_label", "question_diagnostics", "split_groups"):
        def wrap(fn, name=name):
            def call(self, *a, **k):
                frame = sys._getframe(1)  # the calling function (cheap, unlike inspect), past wrappers and comprehensions
                while frame.f_code.co_name in ("call", "<listcomp>", "<genexpr>", "<dictcomp>", "<lambda>"):
                    frame = frame.f_back
                CALLS[name][frame.f_code.co_name] += 1
                return fn(self, *a, **k)
            return call
        setattr(cls, name, wrap(getattr(cls, name)))
    return cls


register_task("holes", lambda task_cfg: logged(HolesWorld)(undefined_share, task_cfg))
print("registered: task.name = holes")

# %% [markdown]
# ## 2. Its config: the ci sizes with this world, and its probe (fail@k hard set)

# %%
from soar_lite.config import load_config  # noqa: E402
from soar_lite.stages import probe  # noqa: E402

cfg = load_config("ci", ["task.name=holes", f"results_dir={results_dir}", "name=your_world", "probe.limit=0",
                         f"probe.samples={probe_samples}", f"probe.confirm_samples={probe_samples}", "probe.level_pool=''",
                         "meta.reward_decoding=logprob", "meta.g=4", "meta.n=4", "meta.M=8", "meta.inner_steps=4",
                         "meta.student.batch_questions=4", "meta.student.group_size=8", "meta.diagnostics_samples=64"])
hard = probe.run(cfg, log=print)
display(hard.table)

# %% [markdown]
# ## 3. One outer step of Algorithm 1 with this world (the grounded teacher)

# %%
from soar_lite.stages.common import hard_sets, load  # noqa: E402
from soar_lite.soar import MetaTrainer  # noqa: E402

hard_train, _ = hard_sets(cfg)
_, task = load(cfg)
trainer = MetaTrainer(cfg, task, hard_train, cfg.layout.meta("grounded"), teacher="grounded")
trainer.state.tau = cfg.meta.tau
row = trainer.outer_step()
labels = [task.exact_label(q, a) for q, a in zip(row["questions"], row["answers"])]
well_posed = float(np.mean([lab["is_well_posed"] for lab in labels]))
print(f"outer step 0: R̂ {row['reward_mean']:+.2e}, {row['accepted']} teacher pairs ({row['rejected']} rejected), "
      f"well posed {well_posed:.2f}, diagnostics {row['diagnostics']}")
for q, a, lab in list(zip(row["questions"], row["answers"], labels))[:6]:
    print(f"  {q}={a}: {'well posed' if lab['is_well_posed'] else 'ILL POSED'}, {'correct' if lab['is_correct'] else 'wrong'}")

# %% [markdown]
# ## 4. Where each Task method was called

# %%
import pandas as pd  # noqa: E402

calls = pd.DataFrame([{"method": m, "called by": ", ".join(f"{f} ({n})" for f, n in c.most_common(4)),
                       "calls": sum(c.values())} for m, c in sorted(CALLS.items())]).set_index("method")
display(calls)

# %% [markdown]
# ## Findings (each sentence computed from what ran above)

# %%
findings_markdown([
    f"The world's probe kept {hard.summary['n_pool']} well-posed problems and found {hard.summary['fail_both_batches']} "
    f"hard ones (0/{probe_samples} twice).",
    f"At the first outer step the untrained teacher wrote {row['accepted']} format-valid pairs, {100 * well_posed:.0f}% of "
    f"them well posed by this world's own judge: the well-posed vs correct axis of Finding 3 is not degenerate here.",
    f"{len(CALLS)} Task methods were called, by {len({f for c in CALLS.values() for f in c})} functions of soar_lite.",
])
