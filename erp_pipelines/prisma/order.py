"""Prisma's migration order: folder names sorted by JavaScript's `localeCompare`, in pure Python.

Prisma's CLI lists `migrations/` and sorts the folder names with `a.localeCompare(b)`, which in Node is ICU's
root collation (the same for every locale Node ships with, for these characters). It is not code-point
order: punctuation and symbols sort before digits, `_` before `-`, digits before letters, and letters
case-insensitively first (`a` < `A` < `b`), so `20251201_0000_baseline_init` sorts before
`20251201120000_add_x` although `1` < `_` in ASCII. Sorting by code point would apply (or skip) migrations
in a different order from `prisma migrate deploy`.

`collation_key` builds a three-level sort key (primary: the character, case and accents ignored; secondary:
accents; tertiary: case), as the Unicode Collation Algorithm compares strings. It is exact for printable
ASCII (checked against Node in the tests) and for Latin letters with combining accents; other characters
are placed after the Latin letters by code point, an approximation no real migration folder has hit.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable

# ICU root collation of printable ASCII (alternate = non-ignorable, as `localeCompare` uses): whitespace,
# punctuation, symbols, currency, digits, then letters; upper and lower case of a letter share a primary weight.
_ROOT_ASCII_ORDER = " _-,;:!?.'\"()[]{}@*/\\&#%`^+<=>|~$0123456789abcdefghijklmnopqrstuvwxyz"
_CONTROL_WHITESPACE = "\t\n\x0b\x0c\r"  # before the space, in this order
_PRIMARY = {ch: i + len(_CONTROL_WHITESPACE) + 1 for i, ch in enumerate(_ROOT_ASCII_ORDER)}
_PRIMARY.update({ch: i + 1 for i, ch in enumerate(_CONTROL_WHITESPACE)})
_OTHER_PRIMARY = 0x1000  # characters outside the table: after every ASCII character, by code point
_SECONDARY_BASE = 0  # a base character carries the common secondary weight; accents sort after it
_TERTIARY_LOWER, _TERTIARY_UPPER = 0, 1

CollationKey = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], str]


def collation_key(name: str) -> CollationKey:
    """A key that sorts strings the way Node's `String.prototype.localeCompare` does."""
    primary: list[int] = []
    secondary: list[int] = []
    tertiary: list[int] = []
    for ch in unicodedata.normalize("NFD", name):
        if unicodedata.combining(ch):  # an accent: no primary weight, a secondary one after the base's
            secondary.append(1 + ord(ch))
            continue
        lower = ch.lower() if len(ch.lower()) == 1 else ch
        weight = _PRIMARY.get(lower)
        if weight is None:
            if unicodedata.category(ch).startswith("C"):  # control characters are ignorable
                continue
            weight = _OTHER_PRIMARY + ord(lower)
        primary.append(weight)
        secondary.append(_SECONDARY_BASE)
        tertiary.append(_TERTIARY_UPPER if ch != lower else _TERTIARY_LOWER)
    # The name itself last: two names equal at every level (which ASCII names never are) keep a fixed order.
    return tuple(primary), tuple(secondary), tuple(tertiary), name


def prisma_sorted(names: Iterable[str]) -> list[str]:
    """The names in the order `prisma migrate deploy` applies the folders."""
    return sorted(names, key=collation_key)
