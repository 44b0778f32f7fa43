"""A Cognito sub, the name of a user everywhere (the Matrix localpart, the audit's key). Standard
library only: the sign-up trigger checks one on Cognito's clock (handlers/signup.py)."""

import re

from .errors import InvalidInput

# Cognito subs are UUIDs. Matrix rejects uppercase localparts (M_INVALID_USERNAME), and a
# sub that is not a UUID means the event did not come from the pool we serve.
SUB = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def normalise_sub(sub: object) -> str:
    if not isinstance(sub, str) or not SUB.match(sub.strip().lower()):
        raise InvalidInput(f"sub must be a Cognito UUID, got {sub!r:.60}")
    return sub.strip().lower()
