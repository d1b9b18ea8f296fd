"""The error a configuration load raises: one `ConfigError` that lists every problem found.

Parsing never stops at the first bad line and nothing is half-applied: `load_config()` parses
every line, validates every cross reference, and raises one `ConfigurationErrors` (a
`ConfigError`) whose `.errors` holds one `ConfigIssue` per problem, in line order.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional

from ..errors import ConfigError

__all__ = ["ConfigIssue", "ConfigurationErrors"]


@dataclass(frozen=True)
class ConfigIssue:
    """One problem: the line (0 when it concerns no single line), the offending token (if one)
    and a message that says what was expected."""

    line: int
    message: str
    token: Optional[str] = None

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


class ConfigurationErrors(ConfigError):
    """A configuration with one or more problems; `.errors` lists them all."""

    def __init__(self, errors: Iterable[ConfigIssue]) -> None:
        self.errors: list[ConfigIssue] = sorted(errors, key=lambda e: (e.line == 0, e.line))
        count = len(self.errors)
        head = f"configuration has {count} error{'s' if count != 1 else ''}"
        super().__init__(head + ":\n" + "\n".join(f"  {e}" for e in self.errors))
