"""Listening sockets that a parent process binds and hands to the gcx server it starts.

Choosing a free port and binding it later, in another process, races every
other process on the machine: between the choice and the bind the port can
become a client connection's local port or another server's, and the server
fails to start with "address already in use". So a parent that starts gcx
servers (``gcx.localnet``, behind the demo, the integration tests and the
benchmarks) binds each listening socket itself, on port 0 so that the kernel
chooses a port nobody holds, writes that port into the server's configuration
and hands the bound socket down. The child finds its sockets by name in one
environment variable, as file descriptors it inherited::

    GCX_LISTEN_FDS=peer:5,api:6,web:7

A server asks for each listener by name (:func:`inherited`, :func:`site`). A
handed socket must be bound to the configured port, so a configuration that
disagrees with its socket stops the server instead of publishing one address
and serving on another. Without the variable a server binds its configured
address itself, as it does in production.

The parent also listens at once: on Linux a socket that is only bound can
still be shared by another one bound with SO_REUSEADDR, a listening one cannot.
Connections made before the child starts wait in the queue and are answered
when it does.
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Mapping

from aiohttp import web

from gcx.errors import ConfigError

ENVIRONMENT = "GCX_LISTEN_FDS"


def bind(host: str = "127.0.0.1", port: int = 0, *, listen: bool = False) -> socket.socket:
    """A TCP socket bound to ``host:port``; port 0 lets the kernel choose.

    Bound and not listening, a socket makes every connection to its port refused
    (what tests need for an address nobody serves), and without SO_REUSEADDR no
    other socket can bind the port. ``listen`` queues connections instead, and
    sets SO_REUSEADDR first, as asyncio does, so that a server started again can
    bind the port it had while its old connections wait out TIME_WAIT.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if listen:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        if listen:
            sock.listen()
    except OSError:
        sock.close()
        raise
    return sock


def port_of(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def handed_down(sockets: Mapping[str, socket.socket]) -> tuple[dict[str, str], tuple[int, ...]]:
    """The environment and ``pass_fds`` that hand ``sockets`` to a child process."""
    value = ",".join(f"{name}:{sock.fileno()}" for name, sock in sockets.items())
    return {ENVIRONMENT: value}, tuple(sock.fileno() for sock in sockets.values())


def inherited(name: str, port: int) -> socket.socket | None:
    """The socket handed down for listener ``name``, or None if none was.

    Refused with a sentence if the variable names a descriptor that is not a
    TCP socket bound to ``port``.
    """
    entries = dict(
        entry.split(":", 1) for entry in os.environ.get(ENVIRONMENT, "").split(",") if entry
    )
    if name not in entries:
        return None
    try:
        sock = socket.socket(fileno=int(entries[name]))
    except (ValueError, OSError) as exc:
        raise ConfigError(
            f"{ENVIRONMENT} names descriptor {entries[name]!r} for the {name} listener, "
            "which is not an open socket; start this server without it."
        ) from exc
    if sock.type != socket.SOCK_STREAM or port_of(sock) != port:
        got = sock.getsockname()
        sock.detach()  # not ours to close: it is whatever the descriptor really is
        raise ConfigError(
            f"The {name} listener handed down is bound to {got}, but the configuration says "
            f"port {port}; start this server without {ENVIRONMENT} or correct the configuration."
        )
    return sock


def site(
    runner: web.AppRunner,
    name: str,
    host: str,
    port: int,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> web.BaseSite:
    """An aiohttp site on the socket handed down for ``name``, else on ``host:port``."""
    sock = inherited(name, port)
    if sock is not None:
        return web.SockSite(runner, sock, ssl_context=ssl_context)
    return web.TCPSite(runner, host, port, ssl_context=ssl_context)
