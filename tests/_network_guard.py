"""A pytest plugin that makes any test opening a network connection fail: the suite must pass offline.

Every internet socket connect (and DNS lookup of a non-local host) raises ``NetworkAccessError``; attempts are
also recorded, and a test that made one fails at teardown even if the code under test swallowed the error
(hub clients often catch connection errors and fall back). Unix-domain sockets stay allowed (multiprocessing
uses them). A test that deliberately checks how a blocked download is reported requests the fixture
``expect_network_attempt``.

Register for the whole suite in ``tests/conftest.py`` with ``pytest_plugins = ["_network_guard"]``; a test
module can also import the fixture: ``from _network_guard import no_network  # noqa: F401``.
"""
from __future__ import annotations

import socket
from dataclasses import dataclass, field

import pytest

_LOCAL_HOSTS = {None, "localhost", "127.0.0.1", "::1", ""}
_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class NetworkAccessError(RuntimeError):
    """Raised instead of opening a network connection during tests."""


@dataclass
class NetworkLog:
    """Addresses a test tried to reach, and whether it said it expects that (``expect_network_attempt``)."""

    attempts: list = field(default_factory=list)
    expected: bool = False
    loopback: bool = False  # allow_loopback: connections to this machine (a local Dask cluster) are let through


@pytest.fixture(autouse=True)
def no_network(request, monkeypatch) -> NetworkLog:
    """Block internet sockets for the test; yields the log of attempted addresses."""
    log = NetworkLog()
    attempts = log.attempts
    real_connect, real_connect_ex, real_getaddrinfo = (socket.socket.connect, socket.socket.connect_ex,
                                                       socket.getaddrinfo)

    def refuse(address) -> None:
        attempts.append(address)
        raise NetworkAccessError(
            f"{request.node.nodeid} tried to open a network connection to {address!r}: tests must run offline. "
            f"Fake the download or the hub instead (see tests/test_tasks_and_worlds.py).")

    def local(self, address) -> bool:
        if self.family == getattr(socket, "AF_UNIX", object()):
            return True
        return log.loopback and isinstance(address, tuple) and address[0] in _LOOPBACK

    def connect(self, address):
        if local(self, address):
            return real_connect(self, address)
        refuse(address)

    def connect_ex(self, address):
        if local(self, address):
            return real_connect_ex(self, address)
        refuse(address)

    def create_connection(address, *args, **kwargs):
        refuse(address)

    def getaddrinfo(host, *args, **kwargs):
        if host not in _LOCAL_HOSTS:
            refuse(host)
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield log
    if attempts and not log.expected:
        pytest.fail(f"{request.node.nodeid} tried to open network connection(s) to {attempts[:3]} (the error may "
                    f"have been caught by the code under test). Tests must run offline.", pytrace=False)


@pytest.fixture
def expect_network_attempt(no_network: NetworkLog) -> NetworkLog:
    """For a test that checks how a blocked network access is reported: attempts are still refused, not failed."""
    no_network.expected = True
    return no_network


@pytest.fixture
def allow_loopback(no_network: NetworkLog) -> NetworkLog:
    """For a test that runs a real local cluster (Dask): TCP connections to this machine's loopback address are
    allowed; everything else stays refused."""
    no_network.loopback = True
    return no_network
