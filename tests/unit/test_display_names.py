"""A display name is an identity claim: Cognito's name is written unless it could pass for
someone else (display_names.py)."""

import pytest

from chat_provisioning.config import ReservedName
from chat_provisioning.display_names import display_name_of, shown_name, skeleton
from tests.fakes import SUB

OWNER = "11111111-2222-4333-8444-555555555555"  # the Cognito sub whose own name is reserved


@pytest.fixture
def reserving(config):
    return config.model_copy(update={"reserved_display_names": (
        ReservedName(name="Phenom Staff"), ReservedName(name="Irena Logan", owner=OWNER))})


@pytest.mark.parametrize("raw, name", [
    ("  Aaron  Silverman ", "Aaron Silverman"),
    ("A\u0000dmin\n\tname", "A dmin name"),
    ("x" * 300, "x" * 256),  # what Synapse takes, never refused
    ("   ", None),
])
def test_display_names_are_normalised_never_refused(raw, name):
    assert display_name_of({"email": "a@b.c", "name": raw}) == name


@pytest.mark.parametrize("name", ["Aaron Silverman", "José", "🔥🔥", "...", "Phenom Staff Team", "Irena"])
def test_a_name_that_poses_as_nobody_is_written_as_it_is(reserving, name):
    assert shown_name(SUB, name, reserving) == (name, None)


@pytest.mark.parametrize("name, why", [
    ("provisioner-bot", "reserved"),  # the bot's localpart (the test config's): reserved always
    ("Provisioner Bot", "reserved"),  # case and separators do not tell names apart
    ("Provisioner_B\u043et", "reserved"),  # a Cyrillic o
    ("\u0440rovisioner-bot", "reserved"),  # a Cyrillic er for "p"
    ("Phenorn Staff", "reserved"),  # "rn" for "m"
    ("Irena Logan", "reserved"),  # someone else's own name
    ("Ir\u0435na Logan", "reserved"),  # with a Cyrillic ie
    ("\u2160rena Logan", "reserved"),  # a Roman numeral one for "I"
    ("Irena\u3164Logan", "reserved"),  # an invisible filler between the words
    ("\uff30henom Staff", "reserved"),  # fullwidth
    ("@irena:chat.thephenom.app", "matrix_id"),
    ("\uff20irena\uff1achat.thephenom.app", "matrix_id"),  # fullwidth @ and :
    ("Irena (@phenom-provisioner-bot:chat.thephenom.app)", "matrix_id"),
    ("\u3164\u3164\u3164", "invisible"),  # Hangul fillers
    ("\u2800", "invisible"),  # a blank braille cell
    ("\u115f\u0301", "invisible"),  # a filler carrying only a combining mark
])
def test_a_name_that_poses_is_replaced_by_a_neutral_one(reserving, name, why):
    assert shown_name(SUB, name, reserving) == (f"User {SUB[:8]}", why)


def test_a_reserved_name_is_its_owners_to_show(reserving):
    assert shown_name(OWNER, "Irena Logan", reserving) == ("Irena Logan", None)
    assert shown_name(OWNER, "Phenom Staff", reserving)[1] == "reserved"  # reserved to nobody


def test_no_name_stays_no_name(reserving):
    assert shown_name(SUB, None, reserving) == (None, None)


def test_the_skeleton_is_unicodes():
    """UTS #39's own example pair, and the mapping read from confusables.txt."""
    assert skeleton("paypal") == skeleton("\u0440\u0430\u0443\u0440\u0430l")
    assert skeleton("\u0131") != skeleton("x")


def test_config_refuses_an_owner_that_is_not_a_sub(config):
    with pytest.raises(ValueError, match="not a Cognito sub"):
        ReservedName(name="Irena Logan", owner="irena")
    assert ReservedName(name="Irena Logan", owner=OWNER.upper()).owner == OWNER
