"""The error a configuration load raises: one `ConfigError` that lists every problem found.

Parsing never stops at the first bad line and nothing is half-applied: `load_config()` parses
every line, validates every cross reference, and raises one `ConfigurationErrors` (a
`ConfigError`) whose `.errors` holds one `ConfigIssue` per problem, in line order.

Messages quote what the file said, and a file can say anything: a NUL or an escape sequence
that would drive the terminal, a multi-megabyte token. `shown()` is how a message quotes text:
characters that do not print are escaped (`\\x1b`) and long text is shortened, and every
`ConfigIssue` message passes through the same escaping, so no message can carry them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from ..errors import ConfigError

__all__ = ["ConfigIssue", "ConfigurationErrors", "shown"]

#: Longest quoted token in a message, and longest message, in characters.
TOKEN_LIMIT = 64
MESSAGE_LIMIT = 512


def _escaped(c: str) -> str:
    if c.isprintable():
        return c
    code = ord(c)
    return (f"\\x{code:02x}" if code < 0x100 else
            f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def _escape(text: str) -> str:
    return text if text.isprintable() else "".join(_escaped(c) for c in text)


def _shorten(text: str, limit: int) -> str:
    """`text` whole when it fits in `limit` characters once escaped, else its escaped head
    (whole escapes only) and its length; reads no more than `limit` characters of it."""
    if len(text) <= limit:
        escaped = _escape(text)
        if len(escaped) <= limit:
            return escaped
    keep = max(limit - 24, 8)
    head: list[str] = []
    used = 0
    for c in text[:keep]:
        piece = _escaped(c)
        if used + len(piece) > keep:
            break
        head.append(piece)
        used += len(piece)
    return f"{''.join(head)}... ({len(text)} characters)"


def shown(text: str, limit: int = TOKEN_LIMIT) -> str:
    """`text` as a message may quote it: non-printing characters escaped (`\\x00`, `\\x1b`,
    `\\u2028`) and, past about `limit` characters, shortened to its head and its length."""
    return _shorten(text, limit)


@dataclass(frozen=True)
class ConfigIssue:
    """One problem: the line (0 when it concerns no single line), the offending token (if one,
    as the file has it) and a message that says what was expected (printable, bounded)."""

    line: int
    message: str
    token: Optional[str] = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "message", _shorten(self.message, MESSAGE_LIMIT))

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class ConfigurationErrors(ConfigError):
    """A configuration with one or more problems; `.errors` lists them all, `.source` names the
    file they come from (None for text)."""

    def __init__(self, errors: Iterable[ConfigIssue], source: Optional[str] = None) -> None:
        self.errors: list[ConfigIssue] = sorted(errors, key=lambda e: (e.line == 0, e.line))
        self.source = None if source is None else _escape(source)
        count = len(self.errors)
        head = f"configuration has {count} error{'s' if count != 1 else ''}"
        if self.source is not None:
            head = f"{self.source}: {head}"
        super().__init__(head + ":\n" + "\n".join(f"  {e}" for e in self.errors))

    def where(self, issue: ConfigIssue) -> str:
        """`FILE:LINE` (or `FILE`, `line N`) of an issue, as compilers print it."""
        if self.source is None:
            return f"line {issue.line}" if issue.line else "configuration"
        return f"{self.source}:{issue.line}" if issue.line else self.source

    def report(self) -> str:
        """One `FILE:LINE: error: message` line per issue, then the count (what `check` and
        `run` print)."""
        lines = [f"{self.where(e)}: error: {e.message}" for e in self.errors]
        count = len(self.errors)
        lines.append(f"{self.source or 'configuration'}: {count} error{'s' if count != 1 else ''}"
                     ", configuration not valid")
        return "\n".join(lines)
