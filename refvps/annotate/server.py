"""The annotation web app: a stdlib HTTP server with a JSON API, the page and the frames.

Security: it binds 127.0.0.1 unless told otherwise, and every request must carry the session's
random token (``?token=`` or the ``X-Refvps-Token`` header), compared in constant time. Paths
are never joined from the URL: frames are looked up by name in the workspace's frame list and
static files in a fixed table, so no request can reach a file outside the workspace or the page.
"""
from __future__ import annotations

import hmac
import json
import re
import secrets
import threading
from http import HTTPStatus
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import cv2
import numpy as np

from refvps.annotate.session import BusyError, ConfirmError, Session
from refvps.annotate.workspace import WorkspaceError
from refvps.errors import ValidationError
from refvps.formats import CONCEPT_GROUPS, IGNORE_LABEL

STATIC_FILES = {"/": ("index.html", "text/html; charset=utf-8"),
                "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
                "/static/app.css": ("app.css", "text/css; charset=utf-8")}
TOKEN_HEADER = "X-Refvps-Token"
MAX_BODY = 8 << 20
FOREGROUND_BGRA = (255, 144, 30, 255)  # dodger blue
IGNORE_BGRA = (0, 214, 255, 255)  # yellow
_FRAME_ROUTE = re.compile(r"^/api/frame/(?P<frame>\d{5})/(?P<action>[a-z_]+(?:\.png)?)$")
_JPEG_ROUTE = re.compile(r"^/frames/(?P<frame>\d{5})\.jpg$")
_THUMB_ROUTE = re.compile(r"^/thumbs/(?P<frame>\d{5})\.jpg$")
_JOB_ROUTE = re.compile(r"^/api/job/since/(?P<since>\d{1,6})$")
_PLAN_ROUTE = re.compile(r"^/api/plan/(?P<frame>\d{5})/(?P<direction>[a-z]+)$")
THUMB_HEIGHT = 54


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
            return _json({"frame": self.frame_view(frame), "undo": self.ws.can_undo(),
                          "redo": self.ws.can_redo()})
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
            from refvps.annotate.export import export_workspace

            dataset = export_workspace(self.ws, self.export_to,
                                       provenance=s.backend.describe())
            return _json({"dataset": str(dataset), "clip_id": self.ws.clip_id})
        raise HTTPError(HTTPStatus.NOT_FOUND, f"no such resource: {path}")


def _json(value) -> tuple[bytes, str]:
    return json.dumps(value).encode(), "application/json"


class _Handler(BaseHTTPRequestHandler):
    server: "AnnotateServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: the terminal shows the URL only
        pass

    def _cookie_name(self) -> str:
        return f"refvps_annotate_{self.server.server_address[1]}"

    def _authorised(self, query: dict) -> bool:
        cookies = SimpleCookie(self.headers.get("Cookie") or "")
        cookie = cookies.get(self._cookie_name())
        given = (self.headers.get(TOKEN_HEADER) or (query.get("token") or [""])[0]
                 or (cookie.value if cookie else ""))
        return hmac.compare_digest(given.encode(), self.server.app.token.encode())

    def _send(self, status: HTTPStatus, data: bytes, ctype: str, set_cookie: bool = False) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        if set_cookie:  # the page, served to a token holder: lets its <img>/<script> authenticate
            self.send_header("Set-Cookie", f"{self._cookie_name()}={self.server.app.token}; "
                                           f"Path=/; HttpOnly; SameSite=Strict")
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: HTTPStatus, message: str, **extra) -> None:
        self._send(status, json.dumps({"error": message, **extra}).encode(), "application/json")

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        body = None
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self.close_connection = True
                return self._error(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request too large")
            raw = self.rfile.read(length) if length else b"{}"
        if not self._authorised(query):
            return self._error(HTTPStatus.FORBIDDEN, "missing or wrong access token; use the "
                                                     "URL printed by refvps annotate")
        app = self.server.app
        try:
            if method == "POST":
                body = json.loads(raw or b"{}")
                if not isinstance(body, dict):
                    raise HTTPError(HTTPStatus.BAD_REQUEST, "the request body must be a JSON object")
                data, ctype = app.post(url.path, body)
            else:
                data, ctype = app.get(url.path)
        except HTTPError as exc:
            return self._error(exc.status, exc.message, **exc.extra)
        except BusyError as exc:
            return self._error(HTTPStatus.CONFLICT, str(exc))
        except ValidationError as exc:
            return self._error(HTTPStatus.UNPROCESSABLE_ENTITY, exc.title,
                               problems=[str(p) for p in exc.problems])
        except (WorkspaceError, KeyError, TypeError, ValueError) as exc:
            return self._error(HTTPStatus.BAD_REQUEST, f"{exc.__class__.__name__}: {exc}")
        self._send(HTTPStatus.OK, data, ctype, set_cookie=method == "GET" and url.path == "/")

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")


class AnnotateServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, session: Session, host: str = "127.0.0.1", port: int = 0,
                 token: str | None = None, export_to: str | Path | None = None):
        self.app = AnnotateApp(session, token or secrets.token_urlsafe(24),
                               None if export_to is None else Path(export_to))
        super().__init__((host, port), _Handler)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{shown}:{port}/?token={self.app.token}"

    def start(self) -> "AnnotateServer":
        """Serve in a background thread (tests, notebooks)."""
        self._thread = threading.Thread(target=self.serve_forever, daemon=True,
                                        name="refvps-annotate")
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()
        self.app.session.close()
