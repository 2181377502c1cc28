"""The network guard: a test that opens a connection fails, even when the code under test swallows the error."""
from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ElementTree
from pathlib import Path

import pytest

from _network_guard import NetworkAccessError, expect_network_attempt, no_network  # noqa: F401 (fixtures)

TESTS_DIR = Path(__file__).resolve().parent


def test_connections_are_refused_in_process(expect_network_attempt):
    with pytest.raises(NetworkAccessError, match="tests must run offline"):
        socket.create_connection(("203.0.113.1", 80), timeout=1)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        with pytest.raises(NetworkAccessError):
            sock.connect(("203.0.113.1", 443))
    with pytest.raises(NetworkAccessError):
        socket.getaddrinfo("example.com", 443)
    assert len(expect_network_attempt.attempts) == 3


def test_local_sockets_still_work():
    left, right = socket.socketpair()
    with left, right:
        left.sendall(b"ok")
        assert right.recv(2) == b"ok"


def test_a_connecting_test_fails_when_the_guard_is_registered(tmp_path):
    """Run a small suite in a subprocess with the plugin registered as tests/conftest.py should register it."""
    (tmp_path / "conftest.py").write_text(f"import sys\nsys.path.insert(0, {str(TESTS_DIR)!r})\n"
                                          f"pytest_plugins = ['_network_guard']\n")
    (tmp_path / "test_suite.py").write_text(textwrap.dedent("""
        import socket, urllib.request
        import pytest
        from _network_guard import NetworkAccessError

        def test_connects():
            socket.create_connection(("203.0.113.1", 80), timeout=1)

        def test_swallows_the_error():
            try:
                urllib.request.urlopen("http://example.com", timeout=1)
            except Exception:
                pass  # a hub client falling back silently

        def test_offline():
            assert True

        def test_expects_the_block(expect_network_attempt):
            with pytest.raises(NetworkAccessError):
                socket.create_connection(("203.0.113.1", 80), timeout=1)
    """))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    report = tmp_path / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}",
                    "-c", str(tmp_path / "pytest.ini"), "--rootdir", str(tmp_path), str(tmp_path)],
                   capture_output=True, text=True, timeout=120, cwd=tmp_path)
    outcome: dict[str, list[str]] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error")]
        outcome.setdefault(case.get("name"), []).extend(kinds)
    assert "failure" in outcome["test_connects"]
    assert "error" in outcome["test_swallows_the_error"]  # fails at teardown: the attempt was recorded
    assert outcome["test_offline"] == [] and outcome["test_expects_the_block"] == []
