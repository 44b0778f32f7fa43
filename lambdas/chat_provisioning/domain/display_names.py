"""The name a user shows in Matrix: Cognito's, unless it could pass for someone else.

Matrix clients show a sender's display name before its user ID, so a name is an identity claim.
A name that spells a Matrix ID, the bot's, a reserved name (config.reserved_display_names) or
something confusable with one (Unicode's confusable skeleton, UTS #39), or that shows nothing
at all, is replaced by a neutral name made from the sub; the step that writes it audits why."""

from __future__ import annotations

import re
import unicodedata
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pydantic stays unloaded where only the rules are needed (signup.py)
    from .config import ChatConfig

ATTRIBUTES = ("name", "preferred_username", "nickname")  # never the email
# Synapse refuses a display name longer than this (MAX_DISPLAYNAME_LEN): cut, never refuse,
# so that no name in Cognito can stop a user's workflow.
MAX_LENGTH = 256
# Unicode 13.0.0's confusables.txt, verbatim (its terms of use allow this with its notice,
# which it carries); docs/how-it-works.md, "Display names", gives its source and checksum.
CONFUSABLES = Path(__file__).parent / "unicode" / "confusables.txt"
# Default_Ignorable_Code_Point (Unicode 15.0, DerivedCoreProperties.txt): drawn as nothing.
DEFAULT_IGNORABLE = ((0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
                     (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
                     (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
                     (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
                     (0xE0000, 0xE0FFF))
# Drawn as nothing too, though not ignorable: a blank braille cell, the Hangul fillers'
# prototype in confusables.txt (U+3164 maps to U+1160), a musical null notehead.
BLANK = {"\u2800", "\u1160", "\U0001d159"}
# "@someone:server" anywhere in the name, as a client would show a user ID.
MATRIX_ID = re.compile(r"@[^\s:@]+:[^\s:]+")
Posing = Literal["invisible", "matrix_id", "reserved"]


def display_name_of(attributes: dict[str, Any]) -> str | None:
    """The first display-name attribute with something in it, with control characters and
    surrounding space removed and cut to what Synapse takes (a cut that ends in a space drops
    it: Synapse strips the names it stores, and a name it changed is one the sweep would write
    again every day): what Cognito says the user is called."""
    for attribute in ATTRIBUTES:
        raw = attributes.get(attribute)
        if isinstance(raw, str):
            name = " ".join("".join(c if c.isprintable() else " " for c in raw).split())[:MAX_LENGTH].rstrip()
            if name:
                return name
    return None


def name_to_write(sub: str, cognito: str | None, matrix: str | None,
                  config: ChatConfig) -> tuple[str | None, Posing | None]:
    """The name the user with this sub should show (None: leave Matrix's as it is), and why
    it is the neutral one, if it is: Cognito's name unless it poses; with none in Cognito, the
    name Matrix holds (a name the user set there) unless that poses."""
    shown = cognito if cognito is not None else matrix
    why = posing(sub, shown, config) if shown is not None else None
    if why:
        return neutral_name(sub), why
    return cognito, None


def neutral_name(sub: str) -> str:
    return f"User {sub[:8]}"


def posing(sub: str, name: str, config: ChatConfig) -> Posing | None:
    """Why `name` would pass for someone `sub` is not, or None."""
    key = comparison_key(name)
    if not any(c not in BLANK and not c.isspace() and unicodedata.category(c)[0] not in "CM" for c in key):
        return "invisible"
    if MATRIX_ID.search(key):
        return "matrix_id"
    others = (config.bot_localpart,) + tuple(r.name for r in config.reserved_display_names if r.owner != sub)
    if loose(key) in reserved_keys(others):
        return "reserved"
    return None


@cache
def reserved_keys(names: tuple[str, ...]) -> frozenset[str]:
    """A reserved name with no letter or digit in its key reserves nothing (else it would
    reserve every name without one: emoji, punctuation)."""
    return frozenset(key for key in (loose(comparison_key(n)) for n in names) if key)


def comparison_key(text: str) -> str:
    """What two names that look alike share, whatever their case: the skeleton of the text
    (a look-alike's prototype, before NFKC can turn it into something else: U+FE30 into ".."
    where its prototype is ":"), NFKC (fullwidth forms), then case folded and the skeleton
    again (a lower-case look-alike; confusables.txt maps many to capitals, "0" to "O")."""
    return skeleton(unicodedata.normalize("NFKC", skeleton(text)).casefold())


def loose(key: str) -> str:
    """A key without what separates words ("Phenom Staff", "phenom-staff", "phenom_staff"), and
    with "l" for "i": case folded, "I" (whose prototype is "l") and "i" are one letter."""
    return "".join(c for c in key if c.isalnum()).replace("i", "l")


def skeleton(text: str) -> str:
    """UTS #39's skeleton: NFD, default-ignorable code points removed, each character replaced
    by its prototype, NFD again. Two strings that look alike have the same skeleton."""
    prototypes = _prototypes()
    kept = (c for c in unicodedata.normalize("NFD", text) if not _ignorable(ord(c)))
    return unicodedata.normalize("NFD", "".join(prototypes.get(c, c) for c in kept))


def _ignorable(code: int) -> bool:
    return any(low <= code <= high for low, high in DEFAULT_IGNORABLE)


@cache
def _prototypes() -> dict[str, str]:
    """confusables.txt's mapping, read once per process (only when a name is checked)."""
    mapping = {}
    for line in CONFUSABLES.read_text(encoding="utf-8-sig").splitlines():
        fields = line.split("#", 1)[0].split(";")
        if len(fields) >= 2 and fields[0].strip():
            source, target = (("".join(chr(int(h, 16)) for h in f.split())) for f in fields[:2])
            mapping[source] = target
    return mapping
