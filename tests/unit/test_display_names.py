"""A display name is an identity claim: Cognito's name is written unless it could pass for
someone else (display_names.py)."""

import pytest

from chat_provisioning.domain.config import ReservedName
from chat_provisioning.domain.display_names import display_name_of, name_to_write, skeleton
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
    ("x" * 255 + " Smith", "x" * 255),  # a cut ending in a space drops it, as Synapse would
    ("   ", None),
])
def test_display_names_are_normalised_never_refused(raw, name):
    assert display_name_of({"email": "a@b.c", "name": raw}) == name


def test_a_blank_name_gives_way_to_the_next_attribute():
    assert display_name_of({"name": "   ", "preferred_username": "Ann"}) == "Ann"


@pytest.mark.parametrize("name", ["Aaron Silverman", "José", "🔥🔥", "...", "Phenom Staff Team", "Irena"])
def test_a_name_that_poses_as_nobody_is_written_as_it_is(reserving, name):
    assert name_to_write(SUB, name, None, reserving) == (name, None)


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
    ("PHEN0M STAFF", "reserved"),  # capitals, whose look-alikes confusables.txt maps to capitals
    ("PH\u0395NOM STAFF", "reserved"),  # a Greek capital epsilon
    ("lrena Logan", "reserved"),  # "l" for "I"
    ("|rena Iogan", "reserved"),
    ("Phenom Staf\u017f", "reserved"),  # a long s, whose prototype is "f" (NFKC alone makes it "s")
    ("PROVISIONER-B0T", "reserved"),
    ("@irena:chat.thephenom.app", "matrix_id"),
    ("\uff20irena\uff1achat.thephenom.app", "matrix_id"),  # fullwidth @ and :
    ("@irena\ufe30chat.thephenom.app", "matrix_id"),  # a presentation-form colon (NFKC makes it "..")
    ("Irena (@phenom-provisioner-bot:chat.thephenom.app)", "matrix_id"),
    ("\u3164\u3164\u3164", "invisible"),  # Hangul fillers
    ("\u2800", "invisible"),  # a blank braille cell
    ("\U0001d159", "invisible"),  # a musical null notehead
    ("\u115f\u0301", "invisible"),  # a filler carrying only a combining mark
])
def test_a_name_that_poses_is_replaced_by_a_neutral_one(reserving, name, why):
    assert name_to_write(SUB, name, None, reserving) == (f"User {SUB[:8]}", why)


def test_a_reserved_name_is_its_owners_to_show(reserving):
    assert name_to_write(OWNER, "Irena Logan", None, reserving) == ("Irena Logan", None)
    assert name_to_write(OWNER, "Phenom Staff", None, reserving)[1] == "reserved"  # reserved to nobody


def test_without_a_name_in_cognito_the_name_set_in_matrix_stays_unless_it_poses(reserving):
    assert name_to_write(SUB, None, None, reserving) == (None, None)
    assert name_to_write(SUB, None, "Ann", reserving) == (None, None)  # left as it is
    assert name_to_write(SUB, None, "Phenom Staff", reserving) == (f"User {SUB[:8]}", "reserved")
    assert name_to_write(SUB, "Ann", "Phenom Staff", reserving) == ("Ann", None)  # Cognito's, when it has one


def test_the_skeleton_is_unicodes():
    """UTS #39's own example pair, and the mapping read from confusables.txt."""
    assert skeleton("paypal") == skeleton("\u0440\u0430\u0443\u0440\u0430l")
    assert skeleton("\u0131") != skeleton("x")


def test_config_refuses_more_reserved_names_than_a_functions_environment_holds(config):
    names = [{"name": f"Staff member number {i}", "owner": OWNER} for i in range(60)]
    with pytest.raises(ValueError, match="Lambda caps a function's whole environment at 4 KB"):
        type(config).model_validate({**config.model_dump(), "reserved_display_names": names})


def test_config_refuses_an_owner_that_is_not_a_sub_and_a_name_without_letters():
    with pytest.raises(ValueError, match="not a Cognito sub"):
        ReservedName(name="Irena Logan", owner="irena")
    with pytest.raises(ValueError, match="no letter or digit"):
        ReservedName(name="---")


def test_a_reserved_name_whose_key_is_empty_reserves_nothing(config):
    """"\u01c3" (a click letter) passes the config's check, but has no letter or digit once
    reduced to its key: it must not reserve every name without one."""
    odd = config.model_copy(update={"reserved_display_names": (ReservedName(name="\u01c3"),)})
    assert name_to_write(SUB, "\U0001f389\U0001f389", None, odd) == ("\U0001f389\U0001f389", None)
    assert ReservedName(name="Irena Logan", owner=OWNER.upper()).owner == OWNER
