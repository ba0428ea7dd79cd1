"""gcx.listeners: a server takes the sockets its parent bound for it, and only those."""

from __future__ import annotations

import errno
import os
import socket

import pytest

from gcx import listeners
from gcx.errors import ConfigError


def _hand_down(monkeypatch: pytest.MonkeyPatch, name: str, fd: int) -> None:
    monkeypatch.setenv(listeners.ENVIRONMENT, f"other:999999,{name}:{fd}")


def test_handed_down_names_each_socket_and_its_descriptor() -> None:
    """The environment names every socket by listener, and pass_fds keeps each one open."""
    with listeners.bind() as api, listeners.bind() as web:
        env, fds = listeners.handed_down({"api": api, "web": web})
        assert fds == (api.fileno(), web.fileno())
        assert env == {listeners.ENVIRONMENT: f"api:{api.fileno()},web:{web.fileno()}"}


def test_inherited_socket_is_the_one_bound_for_that_listener(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The socket handed down for "api" is found, on its port; "web" was not handed down."""
    with listeners.bind(listen=True) as parent:
        port = listeners.port_of(parent)
        _hand_down(monkeypatch, "api", os.dup(parent.fileno()))
        found = listeners.inherited("api", port)
        assert found is not None
        with found:
            assert listeners.port_of(found) == port
        assert listeners.inherited("web", port) is None


def test_without_the_variable_a_server_binds_for_itself(monkeypatch: pytest.MonkeyPatch) -> None:
    """No GCX_LISTEN_FDS: no socket is inherited, so the configured address is bound."""
    monkeypatch.delenv(listeners.ENVIRONMENT, raising=False)
    assert listeners.inherited("api", 8080) is None


def test_socket_on_another_port_than_configured_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A handed socket whose port the configuration does not name stops the server."""
    with listeners.bind() as parent:
        fd = os.dup(parent.fileno())
        _hand_down(monkeypatch, "peer", fd)
        try:
            with pytest.raises(ConfigError):
                listeners.inherited("peer", listeners.port_of(parent) + 1)
        finally:
            os.close(fd)  # left open by the refusal: it was never taken over


def test_descriptor_that_is_not_a_socket_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """A descriptor that is not a socket (here a pipe) is refused, not served on."""
    read, write = os.pipe()
    try:
        _hand_down(monkeypatch, "api", read)
        with pytest.raises(ConfigError):
            listeners.inherited("api", 8080)
    finally:
        os.close(read)
        os.close(write)


def test_bound_port_is_held_against_other_binds() -> None:
    """While bound (listening or not), no other socket can bind the port, even with
    SO_REUSEADDR: the kernel chose it and nobody can take it before the server starts."""
    for listen in (False, True):
        with listeners.bind(listen=listen) as held, socket.socket() as other:
            other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            with pytest.raises(OSError) as taken:
                other.bind(("127.0.0.1", listeners.port_of(held)))
            assert taken.value.errno == errno.EADDRINUSE


def test_bound_socket_that_does_not_listen_refuses_connections() -> None:
    """An address bound and never listened on refuses connections: a reliable 'nobody here'."""
    with listeners.bind() as held, socket.socket() as client:
        assert client.connect_ex(("127.0.0.1", listeners.port_of(held))) == errno.ECONNREFUSED
