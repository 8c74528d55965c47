"""Where the web process listens (issue 17, item 9): `make run` on the loopback interface
only, unless WEB_HOST asks for more; the PaaS (the Procfile's `gunicorn wsgi:app`, with
PORT) on every interface. Asked of the real gunicorn, reading gunicorn.conf.py."""

from __future__ import annotations

import ast
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"


def dev_script():
    spec = importlib.util.spec_from_file_location("dakiya_dev", ROOT / "scripts" / "dev.py")
    module = importlib.util.module_from_spec(spec)
    cwd = os.getcwd()
    try:
        spec.loader.exec_module(module)  # it changes to the checkout, as `make run` does
    finally:
        os.chdir(cwd)
    return module


def gunicorn_bind(env: dict[str, str]) -> list[str]:
    """The addresses gunicorn binds when started in the checkout, as the Procfile's
    `gunicorn wsgi:app` is (it reads ./gunicorn.conf.py), with `env`. A stand-in app:
    the settings are printed before the app is loaded, and wsgi:app needs secrets."""
    shown = subprocess.run(
        [str(GUNICORN), "--print-config", "os:getcwd"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    (line,) = [line for line in shown.stdout.splitlines() if line.split(" ")[0] == "bind"]
    return ast.literal_eval(line.split("=", 1)[1].strip())


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PORT", "WEB_HOST")}


def test_make_run_listens_on_the_loopback_interface_only():
    env = dev_script().process_env(base_env(), "redis://127.0.0.1:6379")
    assert gunicorn_bind(env) == ["127.0.0.1:5000"]


@pytest.mark.parametrize(("asked", "bound"), [("0.0.0.0", "0.0.0.0:5000"), ("::1", "[::1]:5000")])
def test_make_run_listens_where_web_host_asks(asked, bound):
    env = dev_script().process_env({**base_env(), "WEB_HOST": asked}, "redis://127.0.0.1:6379")
    assert gunicorn_bind(env) == [bound]


def test_the_paas_web_process_listens_on_every_interface_at_its_port():
    assert gunicorn_bind({**base_env(), "PORT": "31337"}) == ["0.0.0.0:31337"]
