import json

from chat_provisioning import wiring
from local_run.diagram import README, mermaid


def test_readme_picture_is_drawn_from_the_current_asl():
    drawn = mermaid(json.loads(wiring.ASL_FILE.read_text()))
    assert drawn in README.read_text(), "run `make diagram`"
    assert all(f"{step} -->" in drawn for step in wiring.STEPS)
