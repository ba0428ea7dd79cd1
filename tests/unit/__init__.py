"""Unit tests: pure functions and recipes, no database or network."""
