"""The notebooks are kept as jupytext percent files (`notebooks/NN_<stage>.py`, reviewable text with a tagged
`parameters` cell); the `.ipynb` files beside them, which papermill and Colab open, are generated from them.

    python -m soar_lite.notebook_sources          # regenerate notebooks/*.ipynb (make notebooks)
    python -m soar_lite.notebook_sources --check  # exit 1 if any .ipynb is out of date (tests/test_notebook_sources.py)

Cell ids are numbered, so regenerating an unchanged source gives the same bytes.
"""
from __future__ import annotations

import sys
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


def build(source: Path):
    """The notebook for one percent-format source."""
    import jupytext

    nb = jupytext.reads(Path(source).read_text(), fmt="py:percent")
    nb.metadata = {"kernelspec": dict(KERNELSPEC), "language_info": {"name": "python"}}
    for i, cell in enumerate(nb.cells):
        cell.id = f"cell-{i:02d}"
        cell.metadata.pop("lines_to_next_cell", None)
    return nb


def render(source: Path) -> str:
    import nbformat

    return nbformat.writes(build(source)) + "\n"


def sources(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    return sorted(folder.glob("[0-9][0-9]_*.py"))


def sync(folder: Path = NOTEBOOK_DIR, check: bool = False) -> list[Path]:
    """Write (or, with `check`, only list) the .ipynb files that differ from their source."""
    stale = []
    for src in sources(folder):
        dst, text = src.with_suffix(".ipynb"), render(src)
        if not dst.exists() or dst.read_text() != text:
            stale.append(dst)
            if not check:
                dst.write_text(text)
    return stale


if __name__ == "__main__":
    check = "--check" in sys.argv[1:]
    stale = sync(check=check)
    for p in stale:
        print(("out of date: " if check else "wrote ") + str(p))
    sys.exit(1 if check and stale else 0)
