"""The sans-IO core: identifiers, the directory, state machines and policy decisions.

Nothing here performs I/O or reads the clock; callers pass ``now`` and data in
and get decisions out. ``tests/unit/test_protocol_purity.py`` keeps it so.
"""
