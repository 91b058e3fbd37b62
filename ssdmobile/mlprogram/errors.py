"""The evaluator's typed errors: one line each, exit 2 through the CLI."""

from __future__ import annotations

from ..errors import SSDMobileError


class MLProgramError(SSDMobileError):
    """A package the reference evaluator cannot read, or a value that breaks the program's own
    declared types or shapes."""


class UnsupportedOpError(MLProgramError):
    """An ML Program op (or an op's parameter value) outside the evaluator's set: refused by name,
    never guessed."""
