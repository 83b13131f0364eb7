"""PostgreSQL 15 servers the test starts itself: a primary and a synchronous standby
(streaming replication), killed and promoted as a failover would, and a PgBouncer.

The servers run from ``/usr/lib/postgresql/15/bin`` in a temporary folder on free
ports. As root they run as the user ``postgres`` (``runuser -u postgres --``), which
must then exist; as anyone else, as that user. :func:`skip_reason` says why they
cannot run here, for a visible skip.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from tests.reliability.cluster import free_port

BIN = Path(os.environ.get("CONNECTS_PG_BIN", "/usr/lib/postgresql/15/bin"))
PGBOUNCER = Path("/usr/sbin/pgbouncer")
DATABASE = "connects"


def _root() -> bool:
    return os.geteuid() == 0


def skip_reason(*, pgbouncer: bool = False) -> str | None:
    """Why the test's own servers cannot run on this machine (None: they can)."""
    if not (BIN / "initdb").exists():
        return f"no PostgreSQL 15 server binaries at {BIN} (initdb)"
    if pgbouncer and not PGBOUNCER.exists():
        return f"no PgBouncer at {PGBOUNCER}"
    if _root():
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no user 'postgres' to run the servers as"
        if shutil.which("runuser") is None:
            return "running as root without runuser to start the servers as 'postgres'"
    return None


def as_server_user(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if _root() else cmd


def run(cmd: list[str]) -> str:
    """Run a server program as the server's user; its output (fails the test if it fails)."""
    done = subprocess.run(as_server_user(cmd), capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise AssertionError(f"{cmd[0]} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return done.stdout


def workdir() -> Path:
    """A temporary folder the server user owns (pytest's own are root's, mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix="connects-pg-"))
    if _root():
        entry = pwd.getpwnam("postgres")
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return path


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


@dataclass
class Server:
    """One PostgreSQL server: its data folder, port and log."""

    root: Path
    name: str
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.root / self.name

    @property
    def log(self) -> Path:
        return self.root / f"{self.name}.log"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def settings(self, **values: str | int) -> None:
        """Set ``values`` in postgresql.auto.conf (read last: they win)."""
        conf = self.data / "postgresql.auto.conf"
        keep = [
            line
            for line in conf.read_text().splitlines()
            if line.split("=", 1)[0].strip() not in values
        ]
        keep += [f"{k} = '{v}'" for k, v in values.items()]
        conf.write_text("\n".join(keep) + "\n")

    def initdb(self) -> None:
        run([str(BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
             "-E", "UTF8", "--locale=C", "--no-sync"])  # fmt: skip
        self.settings(
            port=self.port,
            listen_addresses="127.0.0.1",
            unix_socket_directories=str(self.root),
            max_connections=200,
            shared_buffers="32MB",
            wal_level="replica",
            max_wal_senders=8,
            wal_keep_size="128MB",
            synchronous_commit="on",
            fsync="off",  # a killed process loses nothing the kernel holds (no machine crash)
        )

    def base_backup_of(self, primary: Server) -> None:
        """This server as a streaming standby of ``primary`` (``pg_basebackup -R``)."""
        if self.data.exists():
            run(["rm", "-rf", str(self.data)])
        run([str(BIN / "pg_basebackup"), "-h", "127.0.0.1", "-p", str(primary.port),
             "-U", "postgres", "-D", str(self.data), "-R", "-X", "stream", "-c", "fast",
             "--no-sync"])  # fmt: skip
        # Its own port; and no synchronous standby of its own once promoted (a lone
        # primary waiting for a standby that is not there would never commit).
        self.settings(port=self.port, synchronous_standby_names="")

    def start(self) -> None:
        run([str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
             "start"])  # fmt: skip

    def stop(self) -> None:
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                as_server_user(
                    [str(BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"]
                ),
                capture_output=True,
                timeout=60,
            )

    def kill(self) -> None:
        """SIGKILL the postmaster and every process of the server at once (a crash)."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        for p in [pid, *_children(pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (_children(pid) or Path(f"/proc/{pid}").exists()):
            time.sleep(0.02)

    def promote(self) -> None:
        run([str(BIN / "pg_ctl"), "-D", str(self.data), "-w", "-t", "60", "promote"])

    def sql(self, statement: str, database: str = "postgres") -> list[tuple[object, ...]]:
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname=database, autocommit=True
        ) as conn:
            cur = conn.execute(statement)
            return cur.fetchall() if cur.description else []


@dataclass
class Pair:
    """A primary and its synchronous standby; after :meth:`fail_over` the standby is
    the primary, and :meth:`rejoin` makes the dead one a standby again."""

    root: Path = field(default_factory=workdir)
    servers: list[Server] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.servers:
            self.servers = [Server(self.root, "a"), Server(self.root, "b")]

    @property
    def primary(self) -> Server:
        return self.servers[0]

    @property
    def standby(self) -> Server:
        return self.servers[1]

    def url(self) -> str:
        """The multi-host URL libpq defines: whichever server takes writes now."""
        hosts = ",".join(s.host for s in sorted(self.servers, key=lambda s: s.name))
        return f"postgresql+psycopg://postgres@{hosts}/{DATABASE}?target_session_attrs=read-write"

    def standby_url(self) -> str:
        return f"postgresql+psycopg://postgres@{self.standby.host}/{DATABASE}"

    def start(self) -> None:
        self.primary.initdb()
        self.primary.start()
        self.primary.sql(f"CREATE DATABASE {DATABASE}")
        self._add_standby()

    def _add_standby(self) -> None:
        self.standby.base_backup_of(self.primary)
        self.standby.start()
        self.primary.sql("ALTER SYSTEM SET synchronous_standby_names = '*'")
        self.primary.sql("SELECT pg_reload_conf()")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.primary.sql("SELECT 1 FROM pg_stat_replication WHERE sync_state = 'sync'"):
                return
            time.sleep(0.1)
        raise AssertionError("the standby never became synchronous")

    def fail_over(self) -> float:
        """SIGKILL the primary, promote the standby; seconds the promotion took."""
        self.primary.kill()
        return self.promote()

    def promote(self) -> float:
        """Promote the standby (``pg_ctl promote``): it is the primary now; seconds it took."""
        began = time.monotonic()
        self.standby.promote()
        self.servers.reverse()
        return time.monotonic() - began

    def rejoin(self) -> None:
        """The dead server, rebuilt from the new primary, is its synchronous standby."""
        self._add_standby()

    def close(self) -> None:
        for s in self.servers:
            s.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@dataclass
class Bouncer:
    """PgBouncer in front of ``server``, in transaction mode, run from its own folder."""

    root: Path
    server: Server
    pool_size: int = 10
    port: int = field(default_factory=free_port)

    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> None:
        (self.root / "userlist.txt").write_text('"postgres" ""\n')
        ini = self.root / "pgbouncer.ini"
        ini.write_text(
            f"""[databases]
{DATABASE} = host=127.0.0.1 port={self.server.port} dbname={DATABASE} user=postgres

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.root / "userlist.txt"}
admin_users = postgres
pool_mode = transaction
default_pool_size = {self.pool_size}
max_client_conn = 1000
logfile = {self.root / "pgbouncer.log"}
pidfile = {self.root / "pgbouncer.pid"}
"""
        )
        if _root():
            entry = pwd.getpwnam("postgres")
            for path in (ini, self.root / "userlist.txt"):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        run([str(PGBOUNCER), "-d", str(ini)])
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(psycopg.OperationalError):
                self.admin("SHOW VERSION")
                return
            time.sleep(0.05)
        raise AssertionError(f"pgbouncer never answered:\n{self.log()}")

    def log(self) -> str:
        path = self.root / "pgbouncer.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def admin(self, command: str) -> list[dict[str, object]]:
        """A command of PgBouncer's admin console (simple query protocol)."""
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="pgbouncer", autocommit=True
        ) as conn:
            cur = psycopg.ClientCursor(conn)
            cur.execute(command)
            names = [c.name for c in cur.description or []]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def stop(self) -> None:
        pid = self.root / "pgbouncer.pid"
        if pid.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid.read_text().split()[0]), signal.SIGTERM)
            deadline = time.monotonic() + 10
            while pid.exists() and time.monotonic() < deadline:
                time.sleep(0.05)
