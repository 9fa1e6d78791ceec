"""Errors the engine reports to the user as one line (the CLI prints them without a traceback)."""


class NonFiniteError(RuntimeError):
    """A loss, gradient or alpha went inf or NaN; the run stops at the last good checkpoint."""
