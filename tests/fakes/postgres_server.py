"""A throw-away PostgreSQL server for the fault tests and the benchmark (scripts/test.sh
starts the suite's own the same way)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg2

from tests.fakes.redis_server import free_port


def pg_bin() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if not found:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    return found[-1]


class PostgresCluster:
    """A throw-away PostgreSQL cluster of our own on a free loopback port (as the postgres
    user when root), with one empty database: the fault tests stop and start it under
    the running system, the benchmark runs on it. `settings` are extra server settings."""

    def __init__(self, database: str = "dakiya", settings: dict[str, str] | None = None) -> None:
        self.as_pg = ["runuser", "-u", "postgres", "--"] if os.getuid() == 0 else []
        # Not under pytest's tmp_path: the postgres user must be able to reach it.
        self.root = Path(tempfile.mkdtemp(prefix="dakiya-pg-"))
        os.chmod(self.root, 0o755)
        if self.as_pg:
            shutil.chown(self.root, "postgres")
        self.port = free_port()
        self._created = False
        self.bindir = pg_bin()
        subprocess.run(
            [*self.as_pg, self.bindir / "initdb", "-D", self.root / "pg", "-U", "postgres"]
            + ["-A", "trust"],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        self.database = database
        self.settings = {"fsync": "off", "max_connections": "200", **(settings or {})}
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _ctl(self, *args: str) -> None:
        subprocess.run(
            [*self.as_pg, self.bindir / "pg_ctl", "-D", self.root / "pg", *args],
            stdout=subprocess.DEVNULL,
            check=True,
        )

    def start(self) -> PostgresCluster:
        settings = {"listen_addresses": "127.0.0.1", **self.settings}
        opts = f"-p {self.port} -k {self.root} " + " ".join(
            f"-c {name}={value}" for name, value in settings.items()
        )
        self._ctl("-l", str(self.root / "pg.log"), "-w", "-o", opts, "start")
        if not self._created:
            admin = psycopg2.connect(self.url.rsplit("/", 1)[0] + "/postgres")
            admin.autocommit = True
            admin.cursor().execute(f"CREATE DATABASE {self.database}")
            admin.close()
            self._created = True
        return self

    @property
    def pid(self) -> int:
        """The postmaster's process id (while it runs)."""
        return int((self.root / "pg" / "postmaster.pid").read_text().split()[0])

    def stop(self, mode: str = "fast") -> None:
        """`fast` ends every client session at once, as a failover or restart does."""
        self._ctl("-m", mode, "-w", "stop")

    def destroy(self) -> None:
        subprocess.run(
            [*self.as_pg, self.bindir / "pg_ctl", "-D", self.root / "pg", "-m", "immediate"]
            + ["stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)
