"""The base class of every error a user can cause and fix.

The CLI prints a :class:`GradnasError` as one ``gradnas: error: ...`` line and exits with
status 2; anything else is a bug and keeps its traceback. This module imports nothing, so the
CLI can catch these errors without importing torch.
"""

from __future__ import annotations


class GradnasError(Exception):
    """Bad input (a config key, a file, a genotype, a run folder) named in one line."""
