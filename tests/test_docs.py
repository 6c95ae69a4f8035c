"""docs/ stays true to the code: every line quoted in derivations.md is in the source."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def quoted_lines_by_file():
    """Map each source file named in "Formula to code" to the lines its table quotes."""
    text = (ROOT / "docs" / "derivations.md").read_text()
    section = text.split("## Formula to code", 1)[1].split("\n## ", 1)[0]
    quotes: dict[str, list[str]] = {}
    current = None
    for line in section.splitlines():
        header = re.match(r"\*\*`(src/[^`]+)`\*\*", line)
        if header:
            current = header.group(1)
        elif current and line.startswith("|") and "`" in line:
            quotes.setdefault(current, []).append(line.split("|")[2].strip().split("`")[1])
    return quotes


def test_formula_to_code_quotes_the_current_source():
    quotes = quoted_lines_by_file()
    assert set(quotes) == {"src/handgrad/functions/linear.py", "src/handgrad/functions/mse.py"}
    for path, lines in quotes.items():
        source = (ROOT / path).read_text()
        assert len(lines) >= 7
        for line in lines:
            assert line in source, f"{path} no longer contains: {line}"


def test_the_readme_quotes_the_torch_range_pyproject_declares():
    from benchmarks.versions import declared_torch_text

    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Versions", 1)[1].split("\n### ", 1)[0]
    assert f"`torch{declared_torch_text()}`" in section
