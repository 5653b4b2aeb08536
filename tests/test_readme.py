"""The README's generated blocks (result tables, cost table) match what the tables and the cost model give today:
a number typed by hand, or one left behind by a re-render, fails here (scripts/readme_tables.py --write mends it)."""
import importlib.util

from conftest import REPO


def _tool():
    spec = importlib.util.spec_from_file_location("readme_tables", REPO / "scripts" / "readme_tables.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_generated_readme_blocks_match_their_sources():
    tool = _tool()
    text = (REPO / "README.md").read_text()
    generated = tool.blocks()
    present = {m.group("name") for m in tool.BLOCK.finditer(text)}
    assert "cost-paper" in present
    _, changed = tool.render(text, generated)
    assert changed == [], f"README blocks out of date: {changed} (python scripts/readme_tables.py --write)"


def test_a_drifted_number_is_caught():
    tool = _tool()
    text = "a\n<!-- generated: cost-paper -->\n| typed by hand |\n<!-- end generated: cost-paper -->\n"
    _, changed = tool.render(text, {"cost-paper": "| the model's |"})
    assert changed == ["cost-paper"]
