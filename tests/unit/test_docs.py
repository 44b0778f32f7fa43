"""The README's sections drawn from what the stack deploys (stacks/docs.py) are as `make docs`
would write them now."""

import pytest

from stacks.docs import README, markers, sections


@pytest.mark.parametrize("writer", list(sections()))
def test_the_readme_section_is_written_from_what_the_stack_deploys(writer):
    begin, end = markers(writer)
    written = README.read_text().split(begin, 1)[1].split(end, 1)[0]
    assert written.strip("\n").splitlines() == sections()[writer], "run `make docs`"
