"""Secure messages: sending, receiving, reading, recalling and their evidence."""
