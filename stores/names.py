"""The one rule for knowledge-base names, checked wherever a knowledge base is created.

A name has to survive a URL path (`/v1/knowledge-bases/{kb}`), a shell argument (`--kb NAME`) and a
tool argument (MCP) unchanged, and look like what it is. So a name is 1-100 characters:
letters of any script (CJK included), combining marks, digits, spaces inside (not at either end),
and `-` `_` `.`; it starts with a letter or a digit. That leaves out `.` and `..` (which clients
fold away as dot segments), a leading `-` (read as an option), slashes, control, format and
zero-width characters (invisible, so two names could look the same), and other punctuation.

Names are checked when created only: a knowledge base stored under an older, looser rule stays
reachable by its name.
"""

from __future__ import annotations

import unicodedata

from sieve.errors import InvalidInput

MAX_KB_NAME = 100
_PUNCTUATION = frozenset("-_. ")
RULE = (f"1-{MAX_KB_NAME} letters, digits, spaces inside and `-` `_` `.`, "
        "starting with a letter or a digit (e.g. `handbook`, `hr-policies_2024`, `研发部`)")


class InvalidKnowledgeBaseName(InvalidInput):
    def __init__(self, name: str, why: str):
        super().__init__(f"invalid knowledge base name {name!r}: {why}; a name is {RULE}")
        self.name = name


def _allowed(char: str) -> bool:
    return char in _PUNCTUATION or unicodedata.category(char)[0] in "LMN"


def check_kb_name(name: str) -> str:
    """`name` when it follows the rule; InvalidKnowledgeBaseName saying which part does not."""
    if not name:
        raise InvalidKnowledgeBaseName(name, "it is empty")
    if len(name) > MAX_KB_NAME:
        raise InvalidKnowledgeBaseName(name, f"it has {len(name)} characters")
    bad = next((c for c in name if not _allowed(c)), None)
    if bad is not None:
        raise InvalidKnowledgeBaseName(name, f"it contains {_describe(bad)}")
    if unicodedata.category(name[0])[0] not in "LN":
        raise InvalidKnowledgeBaseName(name, f"it starts with {name[0]!r}")
    if name.endswith(" "):
        raise InvalidKnowledgeBaseName(name, "it ends with a space")
    return name


def _describe(char: str) -> str:
    label = unicodedata.name(char, "").lower() or f"a {unicodedata.category(char)} character"
    return f"U+{ord(char):04X} ({label})"
