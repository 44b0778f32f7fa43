"""`make negative-controls` is not in `make test` (it is the longest target): this keeps it runnable.
Each protection must still hold the code it removes, and name tests that exist, or a change
to either leaves a control that proves nothing (seen: two went stale within one session)."""

import re

from tests.attacks.mutations import MUTATIONS, ROOT


def test_every_negative_control_still_finds_the_code_it_removes_and_the_tests_it_names():
    stale = [protection for protection, path, made, _, _ in MUTATIONS if (ROOT / path).read_text().count(made) != 1]
    missing = [test for *_, tests in MUTATIONS for test in tests
               if not re.search(rf"^def {re.escape(test.split('::')[1])}\(", (ROOT / test.split("::")[0]).read_text(),
                                re.M)]
    assert (stale, missing) == ([], [])
