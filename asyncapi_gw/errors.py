"""Problems and the exception hierarchy.

Every failure that crosses the public API is an :class:`AsyncAPIGwError`.  Errors about a
document carry :class:`Problem` values: a JSON pointer into the document, the line and column
in the source text where the pointer leads (1-based; ``None`` when the data came from a dict),
the name of the rule that failed and a message meant for a person.

This module imports nothing else of the package.
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Iterable

import attrs

__all__ = [
    "AsyncAPIGwError",
    "ConversionError",
    "DocumentError",
    "Problem",
    "RelayError",
    "Severity",
    "UnsupportedVersionError",
    "ValidationError",
    "json_excerpt",
]


def json_excerpt(value: object, limit: int = 80) -> str:
    """``value`` written as JSON for a problem message (``null``, ``true``, ``["on", "off"]``).

    Problem messages quote document values as the document's own language writes them, never as
    Python does; a value longer than ``limit`` characters is cut and ends with ``…``.
    """
    try:
        text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=str)
    except ValueError:  # NaN or infinity: not JSON, but a reader knows these words
        text = str(value)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


# Characters that end a line for some reader (str.splitlines, editors, terminals) or control
# the terminal: a document's names reach pointers and messages raw.
_LINE_BREAKING = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _one_line(text: str) -> str:
    return _LINE_BREAKING.sub(
        lambda m: _SHORT_ESCAPES.get(m.group(), f"\\u{ord(m.group()):04x}"), text
    )


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@attrs.frozen(kw_only=True)
class Problem:
    """One thing wrong with a document, located as precisely as the source allows."""

    pointer: str
    message: str
    rule: str
    line: int | None = None
    column: int | None = None
    file: str | None = None
    severity: Severity = Severity.ERROR

    def as_dict(self) -> dict[str, object]:
        """The JSON shape used by ``asyncapi-gw validate --format json``."""
        out: dict[str, object] = {
            "pointer": self.pointer,
            "line": self.line,
            "column": self.column,
            "rule": self.rule,
            "message": self.message,
        }
        if self.file is not None:
            out["file"] = self.file
        return out

    def __str__(self) -> str:
        return self.located()

    def located(self, file: str = "<document>") -> str:
        """``FILE:LINE:COLUMN: POINTER: MESSAGE [RULE]`` (``FILE`` alone without a line), where
        ``FILE`` is the problem's own file, else ``file``; on one line whatever the document's
        names hold: line breaks and control characters are written as escapes (``\\n``)."""
        where = self.file or file
        if self.line is not None:
            where += f":{self.line}:{self.column}"
        return _one_line(f"{where}: {self.pointer or '/'}: {self.message} [{self.rule}]")


class AsyncAPIGwError(Exception):
    """Base class of every error this package raises on purpose."""

    def __init__(self, message: str, problems: Iterable[Problem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems: tuple[Problem, ...] = tuple(problems)

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        lines = [self.message, *(f"  {p}" for p in self.problems)]
        return "\n".join(lines)


class DocumentError(AsyncAPIGwError):
    """The input cannot be read as a document: syntax, encoding, shape or size limits."""


class ValidationError(AsyncAPIGwError):
    """The document breaks the official schema or a semantic rule; ``problems`` best first."""


class UnsupportedVersionError(AsyncAPIGwError):
    """The document declares an AsyncAPI version this package does not handle."""


class ConversionError(AsyncAPIGwError):
    """Valid AsyncAPI that the model cannot represent, or an export the target version lacks."""


class RelayError(AsyncAPIGwError):
    """Relay misconfiguration or lifecycle misuse."""
