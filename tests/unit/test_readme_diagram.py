import json

import pytest

from stacks import wiring
from local_run.diagram import README, mermaid


@pytest.mark.parametrize("machine", list(wiring.MACHINES))
def test_readme_pictures_are_drawn_from_the_current_asl(machine):
    drawn = mermaid(json.loads(wiring.MACHINES[machine].read_text()))
    assert drawn in README.read_text(), "run `make diagram`"
