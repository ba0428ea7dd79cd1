"""The ``gcx`` command."""
