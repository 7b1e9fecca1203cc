"""Errors a user can cause. `str(error)` is the one line the CLI prints; exit code 2.

Anything that is not an `AxonError` is a bug and may show a traceback; every bad input a user can
give (missing folder, bad CSV, unknown profile, unwritable output) must raise one of these instead.
"""


class AxonError(Exception):
    """Base class: a problem with the user's input or environment, reported in one line."""


class ConfigError(AxonError):
    """A flag, profile or config value is invalid. The message names the flag."""


class InputError(AxonError):
    """An input file or folder is missing, empty, unreadable or malformed."""


class ScannerError(AxonError):
    """Checkov or Trivy is missing or failed in a way that retrying cannot fix."""


class ModelError(AxonError):
    """A base model or adapter is missing, incompatible, or needs hardware that is not there."""
