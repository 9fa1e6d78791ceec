"""The resume hint names gradnas the way it was started."""

from pathlib import Path

import pytest

from gradnas.engine import command
from gradnas.engine.command import invoked_as, resume_command


@pytest.mark.parametrize(
    ("argv0", "expected"),
    [
        ("gradnas", "gradnas"),  # found on PATH
        (".venv/bin/gradnas", ".venv/bin/gradnas"),
        ("/opt/my env/bin/gradnas", "'/opt/my env/bin/gradnas'"),  # quoted for the shell
        ("/usr/lib/python3/site-packages/gradnas/__main__.py", "python -m gradnas"),
        ("-c", "python -m gradnas"),
    ],
)
def test_invoked_as(argv0, expected):
    assert invoked_as(argv0) == expected


def test_resume_command_uses_sys_argv_and_quotes_the_folder(monkeypatch):
    monkeypatch.setattr(command.sys, "argv", [".venv/bin/gradnas", "search"])
    assert resume_command("search", Path("runs/my run")) == (
        ".venv/bin/gradnas search --resume 'runs/my run'"
    )
