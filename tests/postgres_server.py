"""A throwaway PostgreSQL server for tests: initdb and pg_ctl in a temporary folder.

The server listens only on a Unix socket in that folder (no TCP port), runs as the `postgres`
user when the tests run as root (PostgreSQL refuses to run as root), and is stopped, and its
folder removed, when the context ends, whatever happened inside.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from contextlib import contextmanager

__all__ = ["find_postgres_bin", "postgres_server", "create_database", "start_server",
           "stop_server", "count_trials"]


def find_postgres_bin() -> str | None:
    """The folder holding initdb and pg_ctl: $COURSE_PG_BIN, Debian's newest, or PATH; or None."""
    candidates = [os.environ.get("COURSE_PG_BIN", "")]
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
                         reverse=True)
    which = shutil.which("pg_ctl")
    if which:
        candidates.append(os.path.dirname(which))
    for folder in candidates:
        if folder and all(os.access(os.path.join(folder, tool), os.X_OK)
                          for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _as_server_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@contextmanager
def postgres_server(bin_dir: str):
    """Start a server; yield the folder of its Unix socket (connect with host=that folder)."""
    root = tempfile.mkdtemp(prefix="pg")  # short: a socket path must fit in 107 bytes
    data = os.path.join(root, "data")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    started = False
    try:
        subprocess.run(
            _as_server_user([os.path.join(bin_dir, "initdb"), "-D", data, "-A", "trust",
                             "-U", "postgres", "--no-sync", "-E", "UTF8"]),
            check=True, capture_output=True, text=True, timeout=120,
        )
        start_server(bin_dir, root)
        started = True
        yield root
    except subprocess.CalledProcessError as error:
        log = os.path.join(root, "server.log")
        tail = open(log).read()[-2000:] if os.path.exists(log) else ""
        raise RuntimeError(f"PostgreSQL did not start: {error.stderr}\n{tail}") from None
    finally:
        if started:
            _stop(bin_dir, data)
        shutil.rmtree(root, ignore_errors=True)


def start_server(bin_dir: str, root: str) -> None:
    """Start (or start again) the server of `root`; return once it accepts connections."""
    options = (f"-c listen_addresses='' -k {root} -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
    subprocess.run(
        _as_server_user([os.path.join(bin_dir, "pg_ctl"), "-D", os.path.join(root, "data"),
                         "-o", options, "-l", os.path.join(root, "server.log"), "-w", "-t", "60",
                         "start"]),
        check=True, capture_output=True, text=True, timeout=90,
    )


def stop_server(bin_dir: str, root: str) -> None:
    """Stop the server of `root` as `pg_ctl restart` does (fast: sessions are terminated)."""
    subprocess.run(
        _as_server_user([os.path.join(bin_dir, "pg_ctl"), "-D", os.path.join(root, "data"),
                         "-m", "fast", "-w", "-t", "60", "stop"]),
        check=True, capture_output=True, text=True, timeout=90,
    )


def count_trials(socket_dir: str, name: str) -> dict[str, int]:
    """{state: number of trials} in database `name`, read with psycopg directly (no pool to
    outlive a restart); {} while the tables or the database do not exist yet."""
    import psycopg

    try:
        with psycopg.connect(host=socket_dir, user="postgres", dbname=name) as connection:
            rows = connection.execute("SELECT state, count(*) FROM trials GROUP BY state")
            return {str(state): count for state, count in rows}
    except (psycopg.errors.UndefinedTable, psycopg.OperationalError):
        return {}


def _stop(bin_dir: str, data: str) -> None:
    try:
        subprocess.run(
            _as_server_user([os.path.join(bin_dir, "pg_ctl"), "-D", data, "-m", "immediate",
                             "-w", "-t", "30", "stop"]),
            capture_output=True, timeout=60,
        )
    except subprocess.TimeoutExpired:
        pass
    pid_file = os.path.join(data, "postmaster.pid")
    if os.path.exists(pid_file):  # pg_ctl failed: kill the postmaster itself
        try:
            os.kill(int(open(pid_file).readline()), signal.SIGKILL)
            time.sleep(0.5)
        except (ValueError, ProcessLookupError, PermissionError):
            pass


def create_database(socket_dir: str, name: str) -> str:
    """Create an empty database; return its SQLAlchemy URL (driver psycopg 3)."""
    import psycopg

    with psycopg.connect(host=socket_dir, user="postgres", dbname="postgres",
                         autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"postgresql+psycopg://postgres@/{name}?host={socket_dir}"
