"""The one small error hierarchy: every message says what was expected and where.

The CLI turns a :class:`PayNudgeError` into a red line and exit code 1; the service turns it
into a 4xx response. Anything else escaping is a bug.
"""

from __future__ import annotations


class PayNudgeError(Exception):
    """Base class for errors a user can act on."""


class ConfigError(PayNudgeError):
    """A setting or configuration file has a value we cannot use."""


class DataError(PayNudgeError):
    """Input data is missing, unreadable or breaks the data contract."""
