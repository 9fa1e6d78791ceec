"""griffe extension for the API pages: fence docstring examples (``>>>`` lines and their output)
as ``pycon`` code, so Markdown does not read ``[0, 1]`` in an output as a link. The docstrings
themselves stay plain doctests, run by pytest."""

from __future__ import annotations

from typing import Any

import griffe


def fence_doctests(text: str) -> str:
    """Wrap each run of ``>>>`` / ``...`` lines and the output lines after them in a fence."""
    out: list[str] = []
    in_example = False
    for line in text.splitlines():
        stripped = line.lstrip()
        starts = stripped.startswith((">>>", "..."))
        if starts and not in_example:
            out.append("```pycon")
            in_example = True
        elif in_example and not stripped:
            out.append("```")
            in_example = False
        out.append(line)
    if in_example:
        out.append("```")
    return "\n".join(out)


class DoctestFences(griffe.Extension):
    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None and ">>>" in obj.docstring.value:
            obj.docstring.value = fence_doctests(obj.docstring.value)
