"""The annotation server as an attacker or a broken client meets it: real sockets, real server.

Each test speaks raw HTTP/1.1 to a running :class:`AnnotateServer` (so the exact bytes an
attacker would send are sent), and checks the status, that the body is a JSON error, and that
nothing changed in the workspace.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest

from refvps.annotate.backends.scripted import ScriptedBackend
from refvps.annotate.server import MAX_BODY, MAX_CONNECTIONS, AnnotateServer
from refvps.annotate.session import Session
from refvps.annotate.workspace import Workspace
from refvps.locks import LockedError, ProcessLock

TOKEN = "s3cret-token"


class _Boom(Exception):
    pass


def _explode(k):
    raise _Boom("backend exploded")


@pytest.fixture
def served(workspace):
    ws_dir, info = workspace
    srv = AnnotateServer(Session(Workspace(ws_dir), ScriptedBackend()), port=0, token=TOKEN,
                         max_connections=3).start()
    yield srv, srv.server_address[1]
    srv.stop()


def _exchange(port: int, head: str, body: bytes = b"", timeout: float = 5.0,
              send_body: bool = True) -> tuple[int, dict, bytes, float]:
    """Send one raw request; return (status, headers, body, seconds until the answer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        started = time.monotonic()
        sock.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + (body if send_body else b""))
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        elapsed = time.monotonic() - started
        head_bytes, _, rest = data.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, v in
                   (line.split(":", 1) for line in lines[1:] if ":" in line)}
        length = int(headers.get("content-length", 0))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
        return status, headers, rest[:length], elapsed


def _post(port, path, body: bytes, extra: str = "", token: str | None = TOKEN,
          length: str | None = None, send_body: bool = True):
    head = (f"POST {path} HTTP/1.1\nHost: 127.0.0.1:{port}\nContent-Type: application/json\n"
            f"Content-Length: {len(body) if length is None else length}\n")
    if token:
        head += f"X-Refvps-Token: {token}\n"
    return _exchange(port, head + extra, body, send_body=send_body)


def _json_error(body: bytes) -> str:
    document = json.loads(body)
    assert isinstance(document, dict) and document["error"]
    return document["error"]


META = json.dumps({"concept": "pwned"}).encode()


def test_the_token_is_checked_before_the_body_is_read(served):
    srv, port = served
    # announces 8 MB and sends none of it: an answer that needs the body would wait 30 s
    status, headers, body, elapsed = _post(port, "/api/meta", b"", token="wrong",
                                           length=str(MAX_BODY), send_body=False)
    assert status == 403 and elapsed < 3 and headers["connection"] == "close"
    assert "token" in _json_error(body)
    status, _, body, _ = _post(port, "/api/meta", META, token=None)
    assert status == 403 and srv.app.ws.meta["concept"] == ""


@pytest.mark.parametrize("length, expected", [
    ("-1", 400), ("abc", 400), ("1e3", 400), ("+5", 400), (str(MAX_BODY + 1), 413),
    ("99999999999999999999999", 413),
])
def test_content_length_is_validated(served, length, expected):
    srv, port = served
    status, headers, body, elapsed = _post(port, "/api/meta", b"", length=length,
                                           send_body=False)
    assert status == expected and elapsed < 3, (length, status)
    assert headers["connection"] == "close" and _json_error(body)


def test_conflicting_lengths_and_chunked_bodies_are_refused(served):
    srv, port = served
    status, _, body, _ = _post(port, "/api/meta", META, extra="Content-Length: 3\n")
    assert status == 400 and "Content-Length" in _json_error(body)
    head = (f"POST /api/meta HTTP/1.1\nHost: 127.0.0.1:{port}\nX-Refvps-Token: {TOKEN}\n"
            "Transfer-Encoding: chunked\n")
    status, _, body, _ = _exchange(port, head, b"5\r\n{\"a\":\r\n0\r\n\r\n")
    assert status == 411 and _json_error(body)
    assert srv.app.ws.meta["concept"] == ""


def test_header_and_request_line_limits(served):
    _, port = served
    many = "".join(f"X-Filler-{i}: {'a' * 100}\n" for i in range(200))  # ~22 KiB of headers
    status, _, body, _ = _exchange(port, f"GET /api/state HTTP/1.1\nHost: 127.0.0.1:{port}\n"
                                         f"X-Refvps-Token: {TOKEN}\n{many}")
    assert status == 431 and _json_error(body)
    status, _, body, _ = _exchange(port, f"GET /{'a' * 20000} HTTP/1.1\nHost: 127.0.0.1\n")
    assert status == 414 and _json_error(body)


def test_cross_site_posts_are_refused_even_with_the_cookie(served):
    srv, port = served
    status, headers, _, _ = _exchange(port, f"GET /?token={TOKEN} HTTP/1.1\n"
                                            f"Host: 127.0.0.1:{port}\n")
    cookie = headers["set-cookie"].split(";")[0]
    # a page on another port of the same host is same-site: the browser sends the cookie
    attacks = [f"Origin: http://127.0.0.1:{port + 1}\nSec-Fetch-Site: same-site\n",
               f"Origin: http://evil.example\nSec-Fetch-Site: cross-site\n",
               "Origin: null\n",
               "Sec-Fetch-Site: same-site\n"]
    for extra in attacks:
        head = (f"POST /api/meta HTTP/1.1\nHost: 127.0.0.1:{port}\nContent-Type: text/plain\n"
                f"Content-Length: {len(META)}\nCookie: {cookie}\n{extra}")
        status, _, body, _ = _exchange(port, head, META)
        assert status == 403 and "cross" in _json_error(body), extra
    status, _, body, _ = _post(port, "/api/meta", META,
                               extra="Origin: http://evil.example\nSec-Fetch-Site: cross-site\n")
    assert status == 403  # the token does not make a cross-site POST acceptable either
    assert srv.app.ws.meta["concept"] == ""
    # what the page itself sends
    same = f"Origin: http://127.0.0.1:{port}\nSec-Fetch-Site: same-origin\nCookie: {cookie}\n"
    status, _, body, _ = _post(port, "/api/meta", META, extra=same, token=None)
    assert status == 200 and srv.app.ws.meta["concept"] == "pwned"


def test_cookie_only_reads_must_be_same_origin_and_hosts_loopback(served):
    _, port = served
    status, headers, _, _ = _exchange(port, f"GET /?token={TOKEN} HTTP/1.1\n"
                                            f"Host: 127.0.0.1:{port}\n")
    cookie = headers["set-cookie"].split(";")[0]
    status, _, body, _ = _exchange(port, f"GET /api/state HTTP/1.1\nHost: 127.0.0.1:{port}\n"
                                         f"Cookie: {cookie}\nSec-Fetch-Site: same-site\n")
    assert status == 403 and _json_error(body)
    status, _, _, _ = _exchange(port, f"GET /api/state HTTP/1.1\nHost: localhost:{port}\n"
                                      f"Cookie: {cookie}\nSec-Fetch-Site: same-origin\n")
    assert status == 200
    # DNS rebinding: a page of evil.example resolved to 127.0.0.1 names its own host
    status, _, body, _ = _exchange(port, f"GET /api/state?token={TOKEN} HTTP/1.1\n"
                                         f"Host: evil.example:{port}\n")
    assert status == 400 and "Host" in _json_error(body)


def test_every_error_is_a_json_answer(served, workspace):
    srv, port = served
    cases = [
        (f"PUT /api/meta HTTP/1.1\nHost: 127.0.0.1:{port}\nContent-Length: 0\n", b"", 501),
        ("GARBAGE\n", b"", 400),
        (f"GET /nope HTTP/1.1\nHost: 127.0.0.1:{port}\nX-Refvps-Token: {TOKEN}\n", b"", 404),
        (f"POST /api/meta HTTP/1.1\nHost: 127.0.0.1:{port}\nX-Refvps-Token: {TOKEN}\n"
         "Content-Length: 5\n", b"{nope", 400),
        (f"POST /api/meta HTTP/1.1\nHost: 127.0.0.1:{port}\nX-Refvps-Token: {TOKEN}\n"
         "Content-Length: 2\n", b"[]", 400),
        (f"POST /api/frame/00000/click HTTP/1.1\nHost: 127.0.0.1:{port}\n"
         f"X-Refvps-Token: {TOKEN}\nContent-Length: 2\n", b"{}", 400),
        (f"GET /api/state HTTP/1.1\nX-Refvps-Token: {TOKEN}\n", b"", 400),  # no Host
    ]
    for head, body, expected in cases:
        status, headers, answer, _ = _exchange(port, head, body)
        assert status == expected, (head, status, answer)
        assert headers["content-type"] == "application/json" and _json_error(answer)
    # an unexpected exception inside a route (a broken backend) is a 500 with a JSON body
    srv.app.session.backend.truth = _explode
    status, headers, answer, _ = _post(port, "/api/frame/00000/click",
                                       json.dumps({"x": 3, "y": 4}).encode())
    assert status == 500 and "backend exploded" in _json_error(answer)
    status, _, _, _ = _exchange(port, f"GET /api/state HTTP/1.1\nHost: 127.0.0.1:{port}\n"
                                      f"X-Refvps-Token: {TOKEN}\n")
    assert status == 200  # and the server still answers


def test_connections_are_bounded(served):
    srv, port = served
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]  # every slot
    try:
        time.sleep(0.3)
        status, headers, body, elapsed = _exchange(
            port, f"GET /api/state HTTP/1.1\nHost: 127.0.0.1:{port}\nX-Refvps-Token: {TOKEN}\n")
        assert status == 503 and elapsed < 3 and _json_error(body)
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        status, *_ = _exchange(port, f"GET /api/state HTTP/1.1\nHost: 127.0.0.1:{port}\n"
                                     f"X-Refvps-Token: {TOKEN}\n")
        if status == 200:
            break
        time.sleep(0.1)
    assert status == 200  # slots come back when connections close


def test_one_server_per_workspace(served, workspace):
    srv, port = served
    ws_dir, _ = workspace
    with pytest.raises(LockedError) as caught:
        AnnotateServer(Session(Workspace(ws_dir), ScriptedBackend()), port=0)
    message = str(caught.value)
    assert f"pid {os.getpid()}" in message and f"127.0.0.1:{port}" in message
    assert str(ws_dir) in message


def test_a_second_server_process_refuses_and_names_the_holder(served, workspace):
    srv, port = served
    ws_dir, info = workspace
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-m", "refvps", "annotate", info["source"],
                           "--workspace", str(ws_dir), "--backend", "opencv", "--port", "0",
                           "--no-browser"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert f"pid {os.getpid()}" in proc.stderr and "in use" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_lock_left_by_a_killed_process_is_taken_over(workspace, tmp_path):
    ws_dir, _ = workspace
    ws_copy = shutil.copytree(ws_dir, tmp_path / "other")
    lock_path = ws_copy / "server.lock"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from refvps.locks import ProcessLock; "
         "ProcessLock(sys.argv[1], 'test holder').acquire(); print('held', flush=True); "
         "time.sleep(600)", str(lock_path)],
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path)), stdout=subprocess.PIPE,
        text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LockedError, match=f"pid {holder.pid}"):
            ProcessLock(lock_path).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    finally:
        if holder.poll() is None:
            holder.kill()
    srv = AnnotateServer(Session(Workspace(ws_copy), ScriptedBackend()), port=0)
    try:
        assert ProcessLock(lock_path).read_holder()["pid"] == os.getpid()
    finally:
        srv.server_close()
    assert ProcessLock(lock_path).acquire().held  # released on close


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a browser tab closed mid-request may."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_a_client_gone_mid_request_is_no_error(workspace, capfd, caplog):
    caplog.set_level(logging.DEBUG, logger="refvps.annotate.server")
    ws_dir, _ = workspace
    session = Session(Workspace(ws_dir), ScriptedBackend(click_delay=0.5))
    srv = AnnotateServer(session, port=0, token=TOKEN).start()
    port = srv.server_address[1]
    try:
        body = json.dumps({"x": 30, "y": 50}).encode()
        # 1. gone while the server computes the answer: writing the answer fails
        sock = socket.create_connection(("127.0.0.1", port))
        sock.sendall(f"POST /api/frame/00000/click HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                     f"X-Refvps-Token: {TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n"
                     .encode() + body)
        deadline = time.monotonic() + 10
        while not any(c[0] == "click" for c in session.backend.calls) \
                and time.monotonic() < deadline:
            time.sleep(0.01)  # the request is read; the click is being computed
        _reset(sock)
        # 2. gone halfway through the headers, and 3. in the middle of a body
        for partial in (f"GET /api/state HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n",
                        f"POST /api/meta HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Refvps-Token: "
                        f"{TOKEN}\r\nContent-Length: 100\r\n\r\n{{\"concept\""):
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(partial.encode())
            time.sleep(0.1)
            _reset(sock)
        deadline = time.monotonic() + 10
        while srv._slots._value < MAX_CONNECTIONS and time.monotonic() < deadline:
            time.sleep(0.05)  # every handler thread has finished
        assert srv._slots._value == MAX_CONNECTIONS
        status, *_ = _exchange(port, f"GET /api/state HTTP/1.1\nHost: 127.0.0.1:{port}\n"
                                     f"X-Refvps-Token: {TOKEN}\n")
        assert status == 200  # the server serves on
    finally:
        srv.stop()
    assert session.ws.record("00000")["points"]  # the click itself was applied
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Error" not in err, err
    gone = [r.getMessage() for r in caplog.records if "went away" in r.getMessage()]
    # the answer's write (1) and the header read (2) failed, each a debug line only
    assert len(gone) == 2 and all(re.search(r"(Reset|BrokenPipe)Error", m) for m in gone), gone
