"""`make dashboard`: Apache Superset over the warehouse's `bi_*` views, on this machine.

Superset runs from its own venv (`.venv-superset`, from deployment/superset/requirements.txt:
it pins Flask 2, SQLAlchemy 1.4 and pandas 2.1, which clash with Dagster's), against the
PostgreSQL `make demo` wrote to: the embedded server under FINANCE_DATA_DIR (this process holds
it up while Superset runs), or FINANCE_PG_URL. Superset's metadata goes to a database of its own
(`superset`) on the same server; it reads the warehouse as the read-only `bi_reader`. The
dashboards are imported from deployment/superset/dashboards.yaml at every start (provision.py),
then gunicorn serves on 127.0.0.1. Ctrl-C stops it (and the embedded server, if this started it).

    python -m finance_assets.dashboard [--port 8088] [--venv .venv-superset]

The admin's password is SUPERSET_ADMIN_PASSWORD, else one generated once and kept (mode 0600)
beside the session key under `<FINANCE_DATA_DIR>/superset/`; SUPERSET_PG_ADMIN_URI names a
superuser when FINANCE_PG_URL's user cannot create roles.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
SUPERSET_DIR = REPO / "deployment" / "superset"
REQUIREMENTS = SUPERSET_DIR / "requirements.txt"
DEFAULT_PORT = 8088


def requirements_digest() -> str:
    return hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()


def ensure_venv(venv: Path, python: str = sys.executable) -> Path:
    """Superset's venv at `venv`, installed from the pinned requirements once (again only when
    they change); returns its Python."""
    venv = Path(venv)
    stamp = venv / ".requirements.sha256"
    bin_python = venv / "bin" / "python"
    digest = requirements_digest()
    if stamp.exists() and stamp.read_text().strip() == digest and bin_python.exists():
        return bin_python
    if not bin_python.exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(bin_python), "-m", "pip", "install", "--quiet", "-r", str(REQUIREMENTS)], check=True
    )
    stamp.write_text(digest + "\n")
    return bin_python


def sqlalchemy_uri(server_url: str, user: str, password: str, dbname: str) -> str:
    """A psycopg2 SQLAlchemy URI for `user` on the server of a libpq URL (TCP or socket)."""
    import psycopg

    info = psycopg.conninfo.conninfo_to_dict(server_url)
    host, port = str(info.get("host") or ""), info.get("port")
    auth = f"{quote(user, safe='')}:{quote(password, safe='')}"
    if host.startswith("/"):  # a socket directory, as the embedded server answers
        query = f"?host={quote(host)}" + (f"&port={port}" if port else "")
        return f"postgresql+psycopg2://{auth}@/{quote(dbname)}{query}"
    netloc = host + (f":{port}" if port else "")
    return f"postgresql+psycopg2://{auth}@{netloc}/{quote(dbname)}"


@dataclass(frozen=True)
class Provisioning:
    """Who and where: the server's superuser URL, the warehouse database, the names to make."""

    admin_url: str
    warehouse_db: str
    secret_key: str
    admin_password: str
    admin_user: str = "admin"
    reader_role: str = "bi_reader"
    superset_user: str = "superset"
    superset_db: str = "superset"
    markets: str = "us,uk"

    def environment(self, home: Path, reader_password: str, superset_password: str) -> dict:
        """The variables provision.py and Superset read (superset_config.py)."""
        return {
            "SUPERSET_CONFIG_PATH": str(SUPERSET_DIR / "superset_config.py"),
            "SUPERSET_HOME": str(home),
            "SUPERSET_SECRET_KEY": self.secret_key,
            "SUPERSET_ADMIN_USER": self.admin_user,
            "SUPERSET_ADMIN_PASSWORD": self.admin_password,
            "SUPERSET_PG_ADMIN_URI": self.admin_url,
            "WAREHOUSE_DB": self.warehouse_db,
            "BI_READER_ROLE": self.reader_role,
            "BI_READER_PASSWORD": reader_password,
            "SUPERSET_PG_USER": self.superset_user,
            "SUPERSET_PG_PASSWORD": superset_password,
            "SUPERSET_PG_DB": self.superset_db,
            "SUPERSET_DATABASE_URI": sqlalchemy_uri(
                self.admin_url, self.superset_user, superset_password, self.superset_db
            ),
            "SUPERSET_WAREHOUSE_URI": sqlalchemy_uri(
                self.admin_url, self.reader_role, reader_password, self.warehouse_db
            ),
            "FINANCE_MARKETS": self.markets,
        }


def provision(venv_python: Path, settings: Provisioning, home: Path) -> dict[str, str]:
    """Roles, grants, Superset's database and the dashboards (deployment/superset/provision.py);
    returns the environment to serve with. The two PostgreSQL passwords are fresh each time:
    `prepare` sets them again and the import stores the reader's, so none is kept on disk."""
    home.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        **settings.environment(home, secrets.token_hex(16), secrets.token_hex(16)),
    }
    script = str(SUPERSET_DIR / "provision.py")
    subprocess.run([str(venv_python), script, "prepare"], env=env, check=True)
    subprocess.run([str(venv_python), script, "load"], env=env, check=True)
    # The server needs neither the superuser's URL nor the roles' setup.
    for name in ("SUPERSET_PG_ADMIN_URI", "BI_READER_PASSWORD", "SUPERSET_PG_PASSWORD"):
        env.pop(name)
    return env


def start_server(
    venv_python: Path, env: Mapping[str, str], port: int, log: Path | None = None
) -> subprocess.Popen:
    """gunicorn serving Superset on 127.0.0.1:`port`, in its own session (stop_server)."""
    gunicorn = venv_python.with_name("gunicorn")
    command = [
        str(gunicorn),
        "--bind",
        f"127.0.0.1:{port}",
        # One process, threads for the dashboard's parallel chart queries: ~400 MB, not 1.5 GB.
        "--workers",
        "1",
        "--worker-class",
        "gthread",
        "--threads",
        "8",
        "--timeout",
        "120",
        "superset.app:create_app()",
    ]
    out = open(log, "ab") if log else None  # noqa: SIM115  (the child writes to it)
    try:
        return subprocess.Popen(
            command, env=dict(env), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    finally:
        if out:
            out.close()


def wait_healthy(base_url: str, process: subprocess.Popen, timeout: float = 180.0) -> None:
    """Until Superset's /health answers OK; fails early when the server exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Superset exited with status {process.returncode}")
        try:
            with urllib.request.urlopen(f"{base_url}/health", timeout=5) as response:
                if response.read().strip() == b"OK":
                    return
        except OSError:
            pass
        time.sleep(1)
    raise TimeoutError(f"Superset did not answer {base_url}/health within {timeout:.0f} s")


def stop_server(process: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM to the server's session (gunicorn and its worker), SIGKILL after `grace`; then
    SIGKILL to whatever of its session outlived gunicorn."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def _kept_secret(path: Path, nbytes: int) -> str:
    """A random secret made once and kept readable by this user only."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT") or DEFAULT_PORT))
    parser.add_argument("--venv", type=Path, default=REPO / ".venv-superset")
    args = parser.parse_args(argv)

    import psycopg

    from finance_assets.lib.markets import markets_from_env
    from finance_assets.resources import data_dir, warehouse_from_env

    state = Path(data_dir(os.environ)).resolve() / "superset"
    if not (args.venv / ".requirements.sha256").exists():
        print(f"Installing Superset into {args.venv} (once; a few minutes)...", flush=True)
    venv_python = ensure_venv(args.venv)
    url = warehouse_from_env().get_url()  # starts (or joins) the embedded server
    admin_url = os.environ.get("SUPERSET_PG_ADMIN_URI") or url
    admin_password = os.environ.get("SUPERSET_ADMIN_PASSWORD") or _kept_secret(
        state / "admin_password", 12
    )
    settings = Provisioning(
        admin_url=admin_url,
        warehouse_db=str(psycopg.conninfo.conninfo_to_dict(url)["dbname"]),
        secret_key=os.environ.get("SUPERSET_SECRET_KEY") or _kept_secret(state / "secret_key", 42),
        admin_password=admin_password,
        markets=",".join(markets_from_env()),
    )
    env = provision(venv_python, settings, state / "home")
    server = start_server(venv_python, env, args.port, log=state / "superset.log")
    stopping: list[int] = []

    def _stop(signum, frame):
        # Only signal here: waiting on the server inside a handler would deadlock with the
        # main thread's own wait (Popen's lock); the main loop below waits.
        stopping.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    base = f"http://127.0.0.1:{args.port}"
    try:
        wait_healthy(base, server)
    except (RuntimeError, TimeoutError) as exc:
        stop_server(server)
        print(f"Superset did not start: {exc}; see {state / 'superset.log'}", file=sys.stderr)
        return 1
    shown = (
        "$SUPERSET_ADMIN_PASSWORD"
        if os.environ.get("SUPERSET_ADMIN_PASSWORD")
        else (f"in {state / 'admin_password'}")
    )
    print(f"\nSuperset: {base}/dashboard/list/  (user {settings.admin_user}, password {shown})")
    print(f"Log: {state / 'superset.log'}. Ctrl-C stops it.", flush=True)
    while server.poll() is None:
        time.sleep(0.5)
    stop_server(server)  # gunicorn exited: its worker too, else SIGKILL after the grace
    return 0 if stopping else server.returncode or 1


if __name__ == "__main__":
    sys.exit(main())
