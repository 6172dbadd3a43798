"""The annotation web app: a stdlib HTTP server with a JSON API, the page and the frames.

Security: it binds 127.0.0.1 unless told otherwise, and every request must carry the session's
random token (``?token=``, the ``X-Refvps-Token`` header or the page's cookie), compared in
constant time before any body is read; state-changing requests must come from the page itself
(Origin and Fetch Metadata checked); sizes, connections and idle time are bounded (see
``_Handler``); one server per workspace. Paths are never joined from the URL: frames are looked
up by name in the workspace's frame list and static files in a fixed table, so no request can
reach a file outside the workspace or the page.

Routes live in :class:`AnnotateApp` (``route`` -> ``get``/``post``); the request-handling core
(``_Handler``) runs every check first and turns every exception into a JSON error.
"""
from __future__ import annotations

import hmac
import http.client
import ipaddress
import json
import logging
import re
import secrets
import sys
import threading
import traceback
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from refvps.annotate.session import BusyError, ConfirmError, Session
from refvps.annotate.workspace import WorkspaceError
from refvps.errors import RefvpsError, ValidationError
from refvps.formats import CONCEPT_GROUPS, IGNORE_LABEL, WORKSPACE_LOCK
from refvps.locks import LockedError, ProcessLock

STATIC_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
                "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
                "/static/app.css": ("app.css", "text/css; charset=utf-8")}
TOKEN_HEADER = "X-Refvps-Token"
MAX_BODY = 8 << 20
"""Largest request body read (the biggest legitimate one, a long brush stroke, is ~100 KiB)."""
MAX_HEAD = 16 << 10
"""Largest request line plus headers."""
MAX_CONNECTIONS = 16
"""Connections served at once, one thread each; a browser opens about six."""
REQUEST_TIMEOUT = 30
"""Seconds a connection may sit idle or stall mid-request before it is dropped."""
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
EXPORT_LOCK_WAIT_S = 30
"""How long the Export button waits for another export into the same dataset (then 409)."""
FOREGROUND_BGRA = (255, 144, 30, 255)  # dodger blue
IGNORE_BGRA = (0, 214, 255, 255)  # yellow
_FRAME_ROUTE = re.compile(r"^/api/frame/(?P<frame>\d{5})/(?P<action>[a-z_]+(?:\.png)?)$")
_JPEG_ROUTE = re.compile(r"^/frames/(?P<frame>\d{5})\.jpg$")
_THUMB_ROUTE = re.compile(r"^/thumbs/(?P<frame>\d{5})\.jpg$")
_JOB_ROUTE = re.compile(r"^/api/job/since/(?P<since>\d{1,6})$")
_PLAN_ROUTE = re.compile(r"^/api/plan/(?P<frame>\d{5})/(?P<direction>[a-z]+)$")
THUMB_HEIGHT = 54
MAX_MASK_RUNS = 1 << 16
"""Most runs sent with an edit's answer (~0.5 MiB of JSON); a noisier mask is fetched as PNG."""
_log = logging.getLogger(__name__)
RECONNECT_PAGE = b"""<!doctype html><meta charset="utf-8"><title>refvps annotate: reconnect</title>
<body style="font:14px system-ui;background:#1e1f22;color:#ddd;padding:2em">
<h2>This link's access token is not accepted</h2><p>The annotation server was restarted with
another token, or this is another workspace's server. Nothing saved is lost: open the URL that
<code>refvps annotate</code> printed in its terminal.</p></body>"""
"""What a browser gets for the page without the right token (instead of a JSON error)."""


class HTTPError(Exception):
    def __init__(self, status: HTTPStatus, message: str, **extra):
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def overlay_png(labels: np.ndarray) -> bytes:
    """RGBA overlay: target in blue, Ignore in yellow, transparent elsewhere."""
    rgba = np.zeros(labels.shape + (4,), np.uint8)
    rgba[labels == 1] = FOREGROUND_BGRA
    rgba[labels == IGNORE_LABEL] = IGNORE_BGRA
    ok, data = cv2.imencode(".png", rgba)
    return data.tobytes()


def mask_runs(labels: np.ndarray) -> dict:
    """The label map as row-major runs for the page: ``{"w", "h", "runs": [value, length, ...]}``
    with values 0 background, 1 target, 2 Ignore (the page's codes).

    Sent with every frame edit's answer so that the page paints the new mask without a second
    request; a mask at 720p is a few hundred runs, far smaller than its overlay PNG.
    """
    flat = labels.ravel()
    starts = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate(([0], starts, [flat.size]))
    values = np.where(flat[bounds[:-1]] == IGNORE_LABEL, 2, flat[bounds[:-1]])
    runs = np.stack([values, np.diff(bounds)], axis=1).ravel()
    return {"w": int(labels.shape[1]), "h": int(labels.shape[0]), "runs": runs.tolist()}


class AnnotateApp:
    """Routes requests to a :class:`Session`; one instance per server."""

    def __init__(self, session: Session, token: str, export_to: Path | None = None):
        self.session = session
        self.ws = session.ws
        self.token = token
        self.export_to = export_to
        self._thumbs: dict[str, bytes] = {}

    # --- views --------------------------------------------------------------------------------
    def frame_view(self, frame: str) -> dict:
        record = self.ws.record(frame)
        return {"name": frame, "status": self.ws.status(frame), "rev": record["rev"],
                "points": record["points"], "box": record["box"], "reviewed": record["reviewed"],
                "no_target": record["no_target"], "locked": self.ws.locked(frame)}

    def mask_view(self, frame: str, rev: int) -> dict | None:
        """The frame's mask as runs (see :func:`mask_runs`) if it is still at revision ``rev``
        and has at most ``MAX_MASK_RUNS`` runs (else None: the page then fetches the overlay)."""
        labels = self.ws.layers(frame).labels()
        if self.ws.record(frame)["rev"] != rev:
            return None
        runs = mask_runs(labels)
        return {**runs, "rev": rev} if len(runs["runs"]) <= 2 * MAX_MASK_RUNS else None

    def job_view(self, since: int = 0) -> dict:
        """The job, with the views of the frames it completed from position ``since`` on."""
        job = self.session.job
        if job is None:
            return {"job": None, "frames": []}
        return {"job": job.public(), "frames": [self.frame_view(f) for f in job.completed[since:]]}

    def thumbnail(self, frame: str) -> bytes:
        data = self._thumbs.get(frame)
        if data is None:
            image = cv2.imread(str(self.ws.frame_path(frame)), cv2.IMREAD_COLOR)
            h, w = image.shape[:2]
            small = cv2.resize(image, (max(1, round(w * THUMB_HEIGHT / h)), THUMB_HEIGHT),
                               interpolation=cv2.INTER_AREA)
            data = self._thumbs[frame] = cv2.imencode(".jpg", small)[1].tobytes()
        return data

    def _step(self, which: str) -> dict:
        """Undo or redo; says which action it changed, on which frames."""
        s = self.session
        if s.job is not None and s.job.state == "running":
            raise BusyError("propagation is running; wait for it or cancel it")
        changed = self.ws.undo() if which == "undo" else self.ws.redo()
        moved = self.ws.state["redo" if which == "undo" else "undo"]
        return {"changed": [self.frame_view(f) for f in changed],
                "action": moved[-1]["action"] if changed and moved else None,
                "undo": self.ws.can_undo(), "redo": self.ws.can_redo()}

    def state(self) -> dict:
        info = self.ws.info
        job = self.session.job
        return {"clip_id": self.ws.clip_id, "fps": info["fps"], "width": info["width"],
                "height": info["height"], "frames": self.ws.frames,
                "anno_frames": [self.frame_view(f) for f in self.ws.anno_frames],
                "meta": self.ws.meta, "undo": self.ws.can_undo(), "redo": self.ws.can_redo(),
                "job": None if job is None else job.public(),
                "backend": self.session.backend.name,
                "export_to": None if self.export_to is None else str(self.export_to),
                "concept_groups": [{"id": g, "name": n, "definition": d}
                                   for g, n, d in CONCEPT_GROUPS]}

    def _frame(self, name: str) -> str:
        if name not in self.ws.anno_frames:
            raise HTTPError(HTTPStatus.NOT_FOUND, f"no annotation frame {name!r}")
        return name

    # --- dispatch -----------------------------------------------------------------------------
    def route(self, method: str, path: str, body: dict | None) -> tuple[bytes, str]:
        """Answer one authorised request: (bytes, content type), or raise (see _error_response)."""
        return self.post(path, body) if method == "POST" else self.get(path)

    def get(self, path: str) -> tuple[bytes, str]:
        if path in STATIC_FILES:
            name, ctype = STATIC_FILES[path]
            return resources.files("refvps.annotate").joinpath("static", name).read_bytes(), ctype
        match = _JPEG_ROUTE.match(path)
        if match and match["frame"] in self.ws.frames:
            return self.ws.frame_path(match["frame"]).read_bytes(), "image/jpeg"
        match = _THUMB_ROUTE.match(path)
        if match and match["frame"] in self.ws.frames:
            return self.thumbnail(match["frame"]), "image/jpeg"
        if path == "/api/state":
            return _json(self.state())
        if path == "/api/job":
            return _json(self.job_view(0))
        match = _JOB_ROUTE.match(path)
        if match:
            return _json(self.job_view(int(match["since"])))
        match = _PLAN_ROUTE.match(path)
        if match:
            return _json(self.session.plan(self._frame(match["frame"]), match["direction"]))
        match = _FRAME_ROUTE.match(path)
        if match:
            frame = self._frame(match["frame"])
            if match["action"] == "overlay.png":
                return overlay_png(self.ws.layers(frame).labels()), "image/png"
            if match["action"] == "info":
                return _json(self.frame_view(frame))
        raise HTTPError(HTTPStatus.NOT_FOUND, f"no such resource: {path}")

    def post(self, path: str, body: dict) -> tuple[bytes, str]:
        try:
            return self._post(path, body)
        except ConfirmError as exc:  # the page asks the annotator, then repeats with confirm
            raise HTTPError(HTTPStatus.CONFLICT, str(exc), confirm=exc.reason,
                            **exc.details) from None

    def _post(self, path: str, body: dict) -> tuple[bytes, str]:
        s = self.session
        match = _FRAME_ROUTE.match(path)
        if match:
            frame, action = self._frame(match["frame"]), match["action"]
            if action == "click":
                s.click(frame, float(body["x"]), float(body["y"]), bool(body.get("positive", True)))
            elif action == "box":
                s.box(frame, [float(v) for v in body["box"]])
            elif action == "clear_prompts":
                s.clear_prompts(frame, confirm=bool(body.get("confirm", False)))
            elif action == "prepare":
                return _json({"started": s.prepare(frame)})
            elif action == "stroke":
                s.stroke(frame, str(body["kind"]), [[float(x), float(y)] for x, y in body["points"]],
                         float(body.get("radius", 8)))
            elif action == "clear":
                s.clear_frame(frame)
            elif action == "reviewed":
                s.set_reviewed(frame, bool(body.get("reviewed", True)))
            else:
                raise HTTPError(HTTPStatus.NOT_FOUND, f"no such action: {action}")
            view = self.frame_view(frame)
            return _json({"frame": view, "undo": self.ws.can_undo(), "redo": self.ws.can_redo(),
                          "mask": self.mask_view(frame, view["rev"])})
        if path == "/api/propagate":
            job = s.propagate(self._frame(str(body["frame"])), str(body.get("direction", "forward")),
                              confirm=bool(body.get("confirm", False)))
            return _json({"job": job.public()})
        if path == "/api/job/cancel":
            job = s.cancel()
            return _json({"job": None if job is None else job.public()})
        if path in ("/api/undo", "/api/redo"):
            return _json(self._step(path.rsplit("/", 1)[1]))
        if path == "/api/meta":
            groups = body.get("concept_groups")
            meta = self.ws.set_meta(body.get("expressions"), body.get("concept"),
                                    None if groups is None else list(groups))
            return _json({"meta": meta})
        if path == "/api/export":
            if self.export_to is None:
                raise HTTPError(HTTPStatus.CONFLICT, "no export target; start the server with "
                                                     "--export-to DATASET_ROOT")
            from refvps.annotate.export import ClipExistsError, export_workspace

            try:
                dataset = export_workspace(self.ws, self.export_to,
                                           provenance=s.backend.describe(),
                                           replace=bool(body.get("replace", False)),
                                           lock_wait=EXPORT_LOCK_WAIT_S)
            except ClipExistsError as exc:
                raise HTTPError(HTTPStatus.CONFLICT, f"{exc} (the API: {{\"replace\": true}})",
                                clip_exists=True) from None
            return _json({"dataset": str(dataset), "clip_id": self.ws.clip_id})
        raise HTTPError(HTTPStatus.NOT_FOUND, f"no such resource: {path}")


def _json(value) -> tuple[bytes, str]:
    return json.dumps(value).encode(), "application/json"


class _BoundedHead:
    """The request stream, with one byte budget for a request's line and headers together.

    ``http.server`` alone allows 64 KiB per header line and 100 headers; past the budget this
    raises ``LineTooLong``, which the server answers with 431 (or 414 for the request line).
    """

    def __init__(self, stream, budget: int):
        self._stream, self._budget, self.remaining = stream, budget, budget

    def start_request(self) -> None:
        self.remaining = self._budget

    def readline(self, size: int = -1) -> bytes:
        line = self._stream.readline(size)
        self.remaining -= len(line)
        if self.remaining < 0:
            raise _HeadTooLarge(f"request line and headers exceed {self._budget} bytes")
        return line

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _HeadTooLarge(http.client.LineTooLong):
    def __init__(self, message: str):
        http.client.HTTPException.__init__(self, message)


class _Handler(BaseHTTPRequestHandler):
    """The request-handling core: every request passes the same checks, in this order, before a
    route of :class:`AnnotateApp` sees it, and every refusal is a JSON error with its status.

    1. head size (request line + headers <= ``MAX_HEAD``), else 414/431;
    2. ``Host`` is a loopback name when the server listens on loopback (DNS rebinding), else 400;
    3. the token (header, ``?token=`` or the page's cookie), else 403 -- before any body is read;
    4. same-origin: a POST (any method but GET) must not come from another site
       (``Sec-Fetch-Site`` ``same-origin``/``none``, ``Origin`` equal to this server's), and a
       request authenticated by the cookie alone must be same-origin too, else 403;
    5. ``Content-Length``: digits only, one value, <= ``MAX_BODY``; else 400/411/413;
    6. the route; its exceptions map to 400/404/409/422, anything unexpected to 500.

    Refusals before the body is read close the connection. Connections idle longer than
    ``REQUEST_TIMEOUT`` are dropped.
    """

    server: "AnnotateServer"
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT

    def setup(self) -> None:
        super().setup()
        self.rfile = _BoundedHead(self.rfile, MAX_HEAD)

    def log_message(self, format, *args):  # quiet: the terminal shows the URL only
        pass

    def handle_one_request(self) -> None:
        self.rfile.start_request()
        try:
            super().handle_one_request()
        except _HeadTooLarge as exc:  # the request line alone (headers are answered by http.server)
            self.requestline, self.request_version, self.command = "", "HTTP/1.1", ""
            self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG, str(exc))

    def send_error(self, code, message=None, explain=None) -> None:
        """http.server's own refusals (bad request line, unknown method, ...) as JSON too."""
        status = HTTPStatus(code)
        self.close_connection = True
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"  # so that the answer has a status line
        self._error(status, message or status.phrase, close=True,
                    **({"detail": explain} if explain else {}))

    def _cookie_name(self) -> str:
        return f"refvps_annotate_{self.server.server_address[1]}"

    def _credentials(self, query: dict) -> tuple[str, str]:
        """The token offered and how: ``header``, ``query``, ``cookie`` or ``none``."""
        if self.headers.get(TOKEN_HEADER):
            return self.headers[TOKEN_HEADER], "header"
        if query.get("token"):
            return query["token"][0], "query"
        cookie = SimpleCookie()
        try:
            cookie.load(self.headers.get("Cookie") or "")
        except CookieError:
            pass
        morsel = cookie.get(self._cookie_name())
        return (morsel.value, "cookie") if morsel else ("", "none")

    def _send(self, status: HTTPStatus, data: bytes, ctype: str, set_cookie: bool = False,
              close: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        if set_cookie:  # the page, served to a token holder: lets its <img>/<script> authenticate
            self.send_header("Set-Cookie", f"{self._cookie_name()}={self.server.app.token}; "
                                           f"Path=/; HttpOnly; SameSite=Strict")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _error(self, status: HTTPStatus, message: str, close: bool = False, **extra) -> None:
        body = json.dumps({"error": message, "status": int(status), **extra}).encode()
        self._send(status, body, "application/json", close=close)

    # --- the checks, in order -----------------------------------------------------------------
    def _check_host(self) -> None:
        host = self.headers.get("Host")
        if host is None:
            raise HTTPError(HTTPStatus.BAD_REQUEST, "missing Host header")
        if self.server.loopback:
            name = urlsplit(f"//{host}").hostname or ""
            if name not in LOOPBACK_NAMES:
                raise HTTPError(HTTPStatus.BAD_REQUEST, f"unexpected Host {host!r}: this server "
                                                        "answers on loopback names only")

    def _check_token(self, query: dict) -> str:
        given, how = self._credentials(query)
        if not hmac.compare_digest(given.encode(), self.server.app.token.encode()):
            raise HTTPError(HTTPStatus.FORBIDDEN, "missing or wrong access token; use the URL "
                                                  "printed by refvps annotate")
        return how

    def _check_same_origin(self, method: str, how: str) -> None:
        if method == "GET" and how != "cookie":
            return  # a link carrying the token may come from anywhere; GETs change nothing
        site = self.headers.get("Sec-Fetch-Site")
        if site is not None and site not in ("same-origin", "none"):
            raise HTTPError(HTTPStatus.FORBIDDEN, f"cross-site request refused "
                                                  f"(Sec-Fetch-Site: {site})")
        origin = self.headers.get("Origin")
        if method != "GET" and origin is not None:
            if origin.lower().rstrip("/") != f"http://{self.headers['Host']}".lower():
                raise HTTPError(HTTPStatus.FORBIDDEN, f"cross-origin request refused "
                                                      f"(Origin: {origin})")

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            raise HTTPError(HTTPStatus.LENGTH_REQUIRED, "send the body with a Content-Length "
                                                        "(chunked bodies are not accepted)")
        values = self.headers.get_all("Content-Length") or []
        if not values:
            return b""
        if len(set(values)) != 1 or not values[0].strip().isdigit() \
                or not values[0].strip().isascii():
            raise HTTPError(HTTPStatus.BAD_REQUEST, f"invalid Content-Length {values!r}")
        length = int(values[0])
        if length > MAX_BODY:
            raise HTTPError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                            f"request body of {length} bytes; the limit is {MAX_BODY}")
        data = self.rfile.read(length)
        if len(data) != length:
            raise ConnectionError("the client closed the connection mid-body")
        return data

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        body_read = method == "GET"
        try:
            self._check_host()
            how = self._check_token(query)
            self._check_same_origin(method, how)
            body = None
            if method == "POST":
                raw = self._read_body()
                body_read = True
                try:
                    body = json.loads(raw or b"{}")
                except ValueError as exc:
                    raise HTTPError(HTTPStatus.BAD_REQUEST, f"the body is not JSON ({exc})")
                if not isinstance(body, dict):
                    raise HTTPError(HTTPStatus.BAD_REQUEST,
                                    "the request body must be a JSON object")
            data, ctype = self.server.app.route(method, url.path, body)
        except ConnectionError:
            self.close_connection = True
            return
        except Exception as exc:  # every failure is an HTTP answer with a JSON body
            status, message, extra = _error_response(exc)
            if status == HTTPStatus.INTERNAL_SERVER_ERROR:
                traceback.print_exc(file=sys.stderr)
            if status == HTTPStatus.FORBIDDEN and method == "GET" and url.path == "/":
                return self._send(status, RECONNECT_PAGE, "text/html; charset=utf-8")
            return self._error(status, message, close=not body_read, **extra)
        self._send(HTTPStatus.OK, data, ctype, set_cookie=method == "GET" and url.path == "/")

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")


def _error_response(exc: Exception) -> tuple[HTTPStatus, str, dict]:
    """The status, message and extra fields answering an exception raised by a route."""
    if isinstance(exc, HTTPError):
        return exc.status, exc.message, exc.extra
    if isinstance(exc, (BusyError, LockedError)):
        return HTTPStatus.CONFLICT, str(exc), {}
    if isinstance(exc, ValidationError):
        return (HTTPStatus.UNPROCESSABLE_ENTITY, exc.title,
                {"problems": [str(p) for p in exc.problems]})
    if isinstance(exc, (WorkspaceError, KeyError, TypeError, ValueError)):
        return HTTPStatus.BAD_REQUEST, f"{exc.__class__.__name__}: {exc}", {}
    if isinstance(exc, RefvpsError):
        return HTTPStatus.CONFLICT, str(exc), {}
    return HTTPStatus.INTERNAL_SERVER_ERROR, f"internal error: {exc.__class__.__name__}: {exc}", {}


_BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                  b"Connection: close\r\nRetry-After: 1\r\nContent-Length: %d\r\n\r\n%s")


class AnnotateServer(ThreadingHTTPServer):
    """The app's HTTP server: at most ``max_connections`` connections are served at once (each
    on its own thread; more are answered 503 at once), and one server per workspace (an OS lock
    on ``<workspace>/server.lock``, released by the kernel when the process dies)."""

    daemon_threads = True

    def __init__(self, session: Session, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, export_to: str | Path | None = None,
                 max_connections: int = MAX_CONNECTIONS):
        self.app = AnnotateApp(session, token or secrets.token_urlsafe(24),
                               None if export_to is None else Path(export_to))
        self._slots = threading.BoundedSemaphore(max_connections)
        self._thread: threading.Thread | None = None
        self.lock = ProcessLock(session.ws.root / WORKSPACE_LOCK)
        super().__init__((host, port), _Handler)
        self.loopback = ipaddress.ip_address(self.server_address[0]).is_loopback
        self.lock.purpose = (f"refvps annotate server at "
                             f"http://{self.server_address[0]}:{self.server_address[1]}/")
        try:
            self.lock.acquire(what=f"annotation workspace {session.ws.root}")
        except LockedError as exc:
            super().server_close()
            raise LockedError(f"{exc}; stop that server first (two servers on one workspace "
                              "would overwrite each other's edits)", exc.holder) from None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{shown}:{port}/?token={self.app.token}"

    def process_request(self, request, client_address) -> None:
        if not self._slots.acquire(blocking=False):
            body = json.dumps({"error": "too many connections; retry", "status": 503}).encode()
            try:
                request.settimeout(1)
                request.sendall(_BUSY_RESPONSE % (len(body), body))
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def handle_error(self, request, client_address) -> None:
        """A client gone away (a page closed or reloaded mid-request) is normal: a debug line,
        no traceback. Anything else is reported as ``socketserver`` does."""
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError):  # BrokenPipe, ConnectionReset, ConnectionAborted
            _log.debug("client %s went away mid-request: %r", client_address, exc)
            return
        super().handle_error(request, client_address)

    def start(self) -> "AnnotateServer":
        """Serve in a background thread (tests, notebooks)."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True,
                                        name="refvps-annotate")
        self._thread.start()
        return self

    def server_close(self) -> None:
        super().server_close()
        self.lock.release()

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.app.session.close()
