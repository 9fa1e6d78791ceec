"""Reading a genotype file (JSON or the DARTS notation) with one-line errors.

The parser's errors give a character position; here they become the file,
line and column, and what the error quotes of the text is cut short, so a
huge or binary file gives one readable line instead of a traceback.
"""

from __future__ import annotations

import re
from pathlib import Path

from .genotype import Genotype, GenotypeError

# A genotype is a few hundred bytes; DARTS' whole genotypes.py is ~4 kB.
MAX_BYTES = 1 << 20
ECHO_LIMIT = 200


def _line_column(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    column = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"line {line}, column {column}"


def _shorten(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= ECHO_LIMIT else message[: ECHO_LIMIT - 3] + "..."


def read_genotype_file(path: str | Path) -> Genotype:
    """The genotype in ``path``: JSON (``genotype.json``) when it starts with ``{``,
    else the DARTS notation (``genotype.txt``), checked against the op table."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as err:
        raise GenotypeError(f"cannot read genotype file {str(path)!r}: {err.strerror}") from None
    if len(data) > MAX_BYTES:
        raise GenotypeError(
            f"{path}: larger than {MAX_BYTES >> 20} MiB; a genotype file holds a few hundred bytes"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise GenotypeError(
            f"{path}: not UTF-8 text (byte {err.start}); expected a genotype in JSON or the "
            f"DARTS notation"
        ) from None
    try:
        if text.lstrip().startswith("{"):
            return Genotype.from_json(text).validate()
        return Genotype.parse(text).validate()
    except GenotypeError as err:
        message = re.sub(
            r"at position (\d+)", lambda m: _line_column(text, int(m.group(1))), str(err)
        )
        raise GenotypeError(f"{path}: {_shorten(message)}") from None
