"""The errors moeplan raises on purpose.

Every error a user can cause is a :class:`MoeplanError`; the CLI turns it into one line on stderr with the
remedy and exit code 1.  Anything else is a bug and keeps its traceback under ``MOEPLAN_DEBUG=1``.
"""

from __future__ import annotations


class MoeplanError(Exception):
    """A handled error: a message for the user and, where there is one, the remedy."""

    def __init__(self, message: str, remedy: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.remedy = remedy

    def __str__(self) -> str:
        if self.remedy:
            return f"{self.message} ({self.remedy})"
        return self.message


class UnknownModelError(MoeplanError):
    """A model name that is neither a catalogue id, an alias, nor a readable path."""


class UnknownGpuError(MoeplanError):
    """An accelerator id that is not in the catalogue."""


class SpecError(MoeplanError):
    """A model spec (YAML) or a config file that is malformed, inconsistent or unsupported."""


class UnsupportedArchitectureError(SpecError):
    """A ``config.json`` whose ``model_type`` moeplan has no adapter for."""


class InputError(MoeplanError):
    """An option value that makes no sense (zero context, negative batch, ...)."""
