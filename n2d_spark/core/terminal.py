"""Text from the data (a row's text or id, a topic's name, a column name in an error) made safe to
print on a terminal, which acts on some characters instead of showing them: ESC starts a sequence
that can move the cursor, recolour, retitle the window or rewrite what was printed before; CR and
the other C0 and C1 controls move or erase; the bidirectional overrides reorder what the reader
sees. Each of them is printed as its Python escape, so what shows is what the data holds."""

from __future__ import annotations

import re

# C0 controls, DEL and the C1 controls; the Arabic letter mark, the left-to-right and right-to-left
# marks, the line and paragraph separators, the bidirectional embeddings, overrides and isolates.
_ACTIVE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with each character a terminal would act on written as its escape (``\\x1b``, ``\\r``, ``\\u202e``)."""
    return _ACTIVE.sub(lambda found: found.group().encode("unicode_escape").decode("ascii"), text)
