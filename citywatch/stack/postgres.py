"""A local PostgreSQL for the Prefect server (``citywatch up --postgres``).

Prefect's default SQLite serialises every write; the 5 s and 10 s schedules make about
26,000 flow runs a day, so a long-running stack wants PostgreSQL. This starts Debian's
PostgreSQL (``initdb``/``pg_ctl`` of the ``postgresql`` package, infra/install.sh) on
a data directory and a loopback port, with password authentication (a random
password, kept in ``<dir>/password``, mode 0600) and a ``prefect`` database. PostgreSQL
refuses to run as root: under root it runs as the ``postgres`` account, which then
owns the directory. An existing server is used instead by setting
``PREFECT_SERVER_DATABASE_CONNECTION_URL`` for ``up`` (see docs/deploy.md).
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from citywatch.errors import BadInputError, TransientError

DB_USER = "citywatch"
DB_NAME = "prefect"
SYSTEM_ACCOUNT = "postgres"


def pg_bin(name: str) -> str:
    """A PostgreSQL program: from Debian's newest /usr/lib/postgresql/<v>/bin, else PATH."""
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name), reverse=True
    )
    for folder in versions:
        if (folder / name).is_file():
            return str(folder / name)
    found = shutil.which(name)
    if found is None:
        raise BadInputError(
            f"--postgres: {name} not found; install the postgresql package (infra/install.sh)"
        )
    return found


def _as_owner(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", SYSTEM_ACCOUNT, "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str], what: str, log: Path | None = None) -> None:
    done = subprocess.run(_as_owner(cmd), capture_output=True, text=True, check=False, timeout=300)
    if done.returncode != 0:
        where = f"; see {log}" if log else ""
        raise TransientError(f"{what} failed (code {done.returncode}): {done.stderr.strip()[-500:]}{where}")


@dataclass(frozen=True)
class LocalPostgres:
    """A PostgreSQL cluster in ``folder`` (data in ``folder/data``) listening on ``port``."""

    folder: Path
    port: int

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log(self) -> Path:
        return self.folder / "postgres.log"

    def password(self) -> str:
        return (self.folder / "password").read_text().strip()

    def url(self) -> str:
        """The SQLAlchemy URL Prefect's server takes (PREFECT_SERVER_DATABASE_CONNECTION_URL)."""
        return f"postgresql+asyncpg://{DB_USER}:{self.password()}@127.0.0.1:{self.port}/{DB_NAME}"

    def init(self) -> None:
        """Create the cluster once (initdb, scram-sha-256 for every connection)."""
        if (self.data / "PG_VERSION").is_file():
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        secret = self.folder / "password"
        secret.write_text(secrets.token_urlsafe(24) + "\n")
        secret.chmod(0o600)
        if os.geteuid() == 0:
            shutil.chown(self.folder, SYSTEM_ACCOUNT, SYSTEM_ACCOUNT)
            shutil.chown(secret, SYSTEM_ACCOUNT, SYSTEM_ACCOUNT)
        _run(
            [
                pg_bin("initdb"),
                "-D",
                str(self.data),
                "-U",
                DB_USER,
                "--pwfile",
                str(secret),
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            "initdb",
        )

    def start(self) -> None:
        """Start (``pg_ctl start -w``) on 127.0.0.1:port, then create the prefect database."""
        options = f"-p {self.port} -h 127.0.0.1 -k {self.folder}"
        _run(
            [
                pg_bin("pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.log),
                "-o",
                options,
                "-w",
                "-t",
                "120",
                "start",
            ],
            "pg_ctl start",
            self.log,
        )
        self._create_database()

    def _create_database(self) -> None:
        env = {**os.environ, "PGPASSWORD": self.password()}
        base = [
            pg_bin("psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            DB_USER,
            "-d",
            "postgres",
            "-tAc",
        ]
        found = subprocess.run(
            [*base, f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}'"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if found.returncode != 0:
            raise TransientError(
                f"psql could not connect to PostgreSQL on port {self.port}: {found.stderr.strip()}"
            )
        if found.stdout.strip() != "1":
            made = subprocess.run(
                [*base, f"CREATE DATABASE {DB_NAME}"], capture_output=True, text=True, env=env, check=False
            )
            if made.returncode != 0:
                raise TransientError(f"could not create database {DB_NAME}: {made.stderr.strip()}")

    def running(self) -> bool:
        done = subprocess.run(
            _as_owner([pg_bin("pg_ctl"), "-D", str(self.data), "status"]), capture_output=True, check=False
        )
        return done.returncode == 0

    def stop(self) -> None:
        """``pg_ctl stop -m fast``; nothing if it is not running."""
        if self.data.is_dir() and self.running():
            _run(
                [pg_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"], "pg_ctl stop", self.log
            )
