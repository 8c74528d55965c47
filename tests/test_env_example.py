"""`.env.example` (which `make run` copies to `.env`) reads the same to python-dotenv and
to a POSIX shell: the README's examples `. ./.env` before signing a request by hand."""

from __future__ import annotations

import subprocess
from pathlib import Path

from dotenv import dotenv_values

EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"


def test_the_env_example_sources_in_a_shell_with_the_values_dotenv_reads():
    shell = subprocess.run(
        ["sh", "-c", 'set -a; . "$0"; env -0', str(EXAMPLE)],
        capture_output=True,
        check=False,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert shell.returncode == 0, shell.stderr.decode()
    assert not shell.stderr, shell.stderr.decode()
    sourced = dict(item.split("=", 1) for item in shell.stdout.decode().split("\0") if "=" in item)
    expected = {name: value or "" for name, value in dotenv_values(EXAMPLE).items()}
    assert {name: sourced.get(name) for name in expected} == expected
