"""Twisted utilities with no domain rules and no SQL (rank 1, beside :mod:`overc.config`)."""
