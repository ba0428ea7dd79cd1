"""gcx: a secure exchange for the UK public sector."""

__version__ = "0.1.0"
