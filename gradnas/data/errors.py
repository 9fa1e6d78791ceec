"""The one error type of the data package."""

from __future__ import annotations

from ..errors import GradnasError


class DataError(GradnasError, ValueError):
    """Data files are missing, unreadable, or not what their format says; or a
    data set's items are not ``(image, label)``. The CLI prints the message as
    one ``gradnas: error:`` line."""
