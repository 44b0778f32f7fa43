"""docs/benchmarks.md's sections that the bench scripts write: each between its script's
markers, the rest of the page as it is."""

from pathlib import Path

PAGE = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def write_section(script: str, lines: list[str]) -> None:
    """Replace what lies between `script`'s two markers with `lines`."""
    begin, end = f"<!-- written by {script}: begin -->", f"<!-- written by {script}: end -->"
    before, rest = PAGE.read_text().split(begin, 1)
    PAGE.write_text(before + "\n".join([begin, *lines, end]) + rest.split(end, 1)[1])
