"""The pages' sections drawn from what the stack deploys (stacks/docs.py) are as `make docs`
would write them now."""

import pytest

from stacks.docs import markers, sections

WRITTEN = [(page, writer, lines) for page, by_writer in sections().items() for writer, lines in by_writer.items()]


@pytest.mark.parametrize(("page", "writer", "lines"), WRITTEN, ids=[f"{p.name}: {w}" for p, w, _ in WRITTEN])
def test_the_section_is_written_from_what_the_stack_deploys(page, writer, lines):
    begin, end = markers(writer)
    written = page.read_text().split(begin, 1)[1].split(end, 1)[0]
    assert written.strip("\n").splitlines() == lines, "run `make docs`"
