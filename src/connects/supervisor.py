"""The parent process of ``connects serve --workers N``: uvicorn's supervisor alone.

``connects serve`` does its set-up (wait for the database, migrate, demo data) in the
full CLI, then replaces itself (``exec``) with this module, so the process that only
watches the workers does not keep the CLI, SQLAlchemy, Alembic and the app in memory:
it imports uvicorn and the logging setup, nothing else. Each worker builds its own app
from the environment (``create_app_from_env``); the state they share (idempotency keys,
the simulated clock) is in the database.

    python -m connects.supervisor HOST PORT WORKERS LOG_LEVEL
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import sys
import tempfile

APP = "connects.api.app:create_app_from_env"


class PortUnavailable(Exception):
    """``connects serve`` cannot listen where it was asked to (one line for people)."""


def check_port(host: str, port: int) -> None:
    """Bind ``host:port`` once and let it go, as uvicorn will bind it: a port another
    server holds fails here, before ``connects serve`` writes anything."""
    if port == 0:  # any free port
        return
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise PortUnavailable(f"cannot listen on {host}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                why = "is already in use (another connects serve?); choose another with --port"
            else:
                why = f"cannot be used: {exc.strerror}"
            raise PortUnavailable(f"port {port} on {host} {why}") from None


def run(host: str, port: int, workers: int, log_level: str) -> None:
    import uvicorn

    from connects import logs

    logs.configure(log_level)
    metrics_dir = None
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        # Each worker writes its counters to files here; /metrics adds them up.
        metrics_dir = tempfile.mkdtemp(prefix="connects-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        uvicorn.run(
            APP,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            log_config=logs.config_dict(log_level),  # JSON lines, secrets scrubbed
            # The app reads X-Forwarded-For only from CONNECTS_TRUSTED_PROXIES; uvicorn's
            # own reading would trust it from any local peer.
            proxy_headers=False,
        )
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def main(argv: list[str]) -> None:
    host, port, workers, log_level = argv
    run(host, int(port), int(workers), log_level)


if __name__ == "__main__":  # pragma: no cover - exercised through ``connects serve``
    main(sys.argv[1:])
