"""mkdocs hook: put every ``gradnas`` command's ``--help`` into docs/cli.md, and the changelog
into docs/changelog.md, at build time, so neither page is a copy that can drift."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

MARKER = "<!-- gradnas-cli-help -->"


def _help_sections() -> str:
    from gradnas.cli import build_parser

    os.environ.setdefault("COLUMNS", "100")  # argparse wraps to the terminal; pin it for the page
    parser = build_parser()
    parts = ["## gradnas\n\n```text\n" + parser.format_help() + "```\n"]
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, sub in subparsers.choices.items():
        parts.append(f"## gradnas {name}\n\n```text\n{sub.format_help()}```\n")
    return "\n".join(parts)


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, _help_sections())
    if page.file.src_uri == "changelog.md":
        return (Path(__file__).parent.parent / "CHANGELOG.md").read_text()
    return markdown
