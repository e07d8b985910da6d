"""JavaScript regular expressions, as the official parser (ajv) reads them, spelled for ``re``."""

from __future__ import annotations

import functools
import re

__all__ = ["python_regex"]

# JavaScript's named groups, which Python spells (?P<name>...).
_JS_NAMED_GROUP = re.compile(r"\(\?<(?![=!])")
# JavaScript's \s: ECMA-262 white space and line terminators (Python's own \s differs).
_JS_SPACE = r"\t\n\v\f\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


@functools.lru_cache(maxsize=1024)
def python_regex(pattern: str) -> str:
    r"""A JavaScript pattern spelled for Python's ``re``, as the official parser (ajv) reads it:
    named groups spelled ``(?P<``; ``\d``, ``\w`` and ``\b`` ASCII-only (the ``(?a)`` flag);
    ``\s`` and ``\S`` (outside a class) JavaScript's Unicode white space."""
    out: list[str] = []
    in_class = False
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\" and i + 1 < n:
            escaped = pattern[i + 1]
            if escaped == "s":
                out.append(_JS_SPACE if in_class else f"[{_JS_SPACE}]")
            elif escaped == "S" and not in_class:
                out.append(f"[^{_JS_SPACE}]")
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if char == "[" and not in_class:
            in_class = True
        elif char == "]" and in_class:
            in_class = False
        out.append(char)
        i += 1
    return "(?a)" + _JS_NAMED_GROUP.sub("(?P<", "".join(out))
