"""PayNudge: learn whether, when, how and with which offer to remind customers of open bills."""

__version__ = "0.1.0"
