"""Shared test set-up: offline hub, the repository path, the tiny model with fresh LoRA adapters, the tiny task, and the
order `make test` runs tests in on two pytest-xdist workers (`-n 2 --dist loadgroup`): tests marked `whole_run` (a
whole pipeline or several stages, tens of seconds to minutes each) are handed out first, the longest first, so the
short tests fill the other worker instead of one long run finishing alone at the end; a module whose module-scoped
fixture is costly, or whose tests read what an earlier one wrote (test_soar), names an `xdist_group`, so its tests
run one after another on one worker; every test that starts Ray is in the `ray` group (one local Ray instance at a
time)."""
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402

from soar_lite.config import ModelConfig  # noqa: E402


def pytest_configure(config):
    """Refuse, in one line before any test, the pytest/xdist pair whose --dist loadgroup groups nothing."""
    if getattr(config.option, "dist", "no") != "loadgroup" or hasattr(config, "workerinput"):
        return
    import xdist
    from packaging.version import Version

    if Version(pytest.__version__) >= Version("9.2") and Version(xdist.__version__) <= Version("3.8.0"):
        raise pytest.UsageError(f"pytest {pytest.__version__} with pytest-xdist {xdist.__version__}: --dist loadgroup "
                                "groups nothing (pytest-xdist issue #1386); install pytest<9.2 (pyproject.toml's dev "
                                "extra) or run make test TEST_WORKERS=0")


@pytest.hookimpl(trylast=True)  # after pytest-xdist's own hook, which names each grouped test's group in its node id
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist: whole runs first, the longest first (`whole_run(seconds=...)`: the test's time alone on an
    idle 2-core machine, measured with --durations, a scheduling hint only); the rest keep their files' order. xdist
    hands out work in this order (a group goes where its first test goes, and its tests run one after another). In
    one process the files' order stays, so a module-scoped fixture is built once. A group that did not take effect
    stops the run: with pytest 9.2, xdist 3.8's loadgroup silently groups nothing (pytest-xdist issue #1386), and
    test_soar's tests, which read one another's run, then fail on two workers."""
    if not hasattr(config, "workerinput"):  # not an xdist worker
        return
    if config.getvalue("loadgroup"):
        lost = [i.nodeid for i in items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
        if lost:
            raise pytest.UsageError(f"pytest-xdist's --dist loadgroup did not group {lost[0]} (and {len(lost) - 1} "
                                    f"more): pytest {pytest.__version__} with this xdist (issue #1386), "
                                    "install pytest<9.2 (pyproject.toml's dev extra) or run make test TEST_WORKERS=0")

    def cost(item):
        mark = item.get_closest_marker("whole_run")
        return -mark.kwargs.get("seconds", 1) if mark else 0

    items.sort(key=cost)


REPO = Path(__file__).resolve().parent.parent


def load_script(name: str):
    """scripts/<name>.py as a module (the scripts are not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


TINY_LORA = ModelConfig(path="tiny", backend="hf", dtype="float32", lora_r=8, lora_alpha=16)


@pytest.fixture(scope="session")
def repo():
    return REPO


@pytest.fixture(scope="module")
def policy():
    """The shipped tiny model with fresh rank-8 LoRA adapters (equal to the base model); tests restore what they change."""
    from soar_lite.models import load_policy

    return load_policy(TINY_LORA, seed=0)


@pytest.fixture(scope="module")
def tiny_task():
    from soar_lite.tasks.tiny import TinyTask, TinyWorld

    return TinyTask(TinyWorld())


# ---- a finished 2-step grounded meta-training run at ci size, for the run-safety and reliability tests ----------
QUICK_META = ["meta.teachers=[grounded]", "meta.g=2", "meta.n=4", "meta.r=1", "meta.inner_steps=1"]


def quick_cfg(results, *extra):
    from soar_lite.config import load_config

    return load_config("ci", [f"results_dir={results}", *QUICK_META, *extra])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A probed run directory with a finished 2-step grounded meta-training run (copied by each test)."""
    from soar_lite.stages import meta_train, probe

    base = tmp_path_factory.mktemp("finished")
    cfg = quick_cfg(base, "meta.outer_steps=2")
    probe.run(cfg, log=lambda m: None)
    meta_train.run(cfg, log=lambda m: None)
    return base


@pytest.fixture
def run_copy(finished, tmp_path):
    import shutil

    shutil.copytree(finished, tmp_path / "r")
    return tmp_path / "r"
