"""Start an annotation session from the command line: ingest, backend, server, browser."""
from __future__ import annotations

import errno
import json
import os
import secrets
import signal
import webbrowser
from pathlib import Path
from typing import Callable

from refvps.annotate.backends import make_backend
from refvps.annotate.ingest import default_workspace, ingest, reopen_warnings
from refvps.annotate.server import AnnotateServer
from refvps.annotate.session import Session
from refvps.annotate.storage import atomic_write_json
from refvps.annotate.workspace import Workspace
from refvps.errors import RefvpsError
from refvps.formats import REFVPS_FPS, WORKSPACE_BACKEND, WORKSPACE_INFO, WORKSPACE_TOKEN


class AnnotateError(RefvpsError):
    """A session that cannot start: port in use, backend not installed or not configured."""


def _default_device() -> str:
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def workspace_token(workspace: Path) -> str:
    """The workspace's access token, created (readable by its owner only) on first use, so that
    a page left open keeps working after the server restarts."""
    path = workspace / WORKSPACE_TOKEN
    if path.is_file():
        token = path.read_text(encoding="ascii").strip()
        if token:
            return token
    token = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(token + "\n")
    return token


def recorded_backend(workspace: str | Path) -> dict:
    """The provenance of the backend the workspace's latest session used (for exports)."""
    path = Path(workspace) / WORKSPACE_BACKEND
    if not path.is_file():
        return {"backend": "unknown", "note": "no annotation session recorded its backend"}
    return json.loads(path.read_text(encoding="utf-8"))


def _bind(session: Session, host: str, port: int, token: str,
          export_to: str | Path | None) -> AnnotateServer:
    try:
        return AnnotateServer(session, host=host, port=port, token=token, export_to=export_to)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise AnnotateError(f"port {port} on {host} is in use (another refvps annotate?); "
                                f"pass --port N, or --port 0 for any free port") from None
        if exc.errno in (errno.EADDRNOTAVAIL, errno.EACCES):
            raise AnnotateError(f"cannot listen on {host}:{port} ({exc.strerror})") from None
        raise


def _backend(name: str, **options):
    try:
        engine = make_backend(name, **options)
    except ValueError as exc:
        raise AnnotateError(str(exc)) from None
    except ImportError as exc:
        raise AnnotateError(f"the {name} backend needs packages that are not installed "
                            f"({exc}); see docs/annotation.md, or use --backend opencv") from None
    return engine


def serve(clip: str | Path, *, workspace: str | Path | None = None, clip_id: str | None = None,
          frames_fps: float | None = None, backend: str = "sam2", sam2_config: str | None = None,
          sam2_checkpoint: str | None = None, sam2_image_size: int | None = None,
          device: str | None = None, host: str = "127.0.0.1", port: int = 8765,
          token: str | None = None, export_to: str | Path | None = None,
          open_browser: bool = True, echo: Callable[[str], None] = print) -> None:
    """Serve the annotation page for ``clip`` until interrupted (Ctrl+C or SIGTERM)."""
    engine = _backend(backend, sam2_config=sam2_config, sam2_checkpoint=sam2_checkpoint,
                      device=device or (_default_device() if backend == "sam2" else "cpu"),
                      sam2_image_size=sam2_image_size)
    workspace = Path(workspace) if workspace else default_workspace(clip)
    if (workspace / WORKSPACE_INFO).is_file():
        info = json.loads((workspace / WORKSPACE_INFO).read_text(encoding="utf-8"))
        for warning in reopen_warnings(info, clip, clip_id, frames_fps):
            echo(f"warning: {warning}")
    elif Path(clip).is_dir() and frames_fps is None:
        echo(f"note: {Path(clip).name} is a folder of frames, taken as {REFVPS_FPS} fps; pass "
             f"--frames-fps N if it was recorded at another rate")
    info = ingest(clip, workspace, clip_id=clip_id, frames_fps=frames_fps or REFVPS_FPS,
                  progress=True)
    session = Session(Workspace(workspace), engine)
    server = _bind(session, host, port, token or workspace_token(workspace), export_to)
    try:
        try:
            session.start(report=echo)
        except ImportError as exc:
            raise AnnotateError(f"the {backend} backend needs packages that are not installed "
                                f"({exc}); see docs/annotation.md, or use --backend opencv") from None
        atomic_write_json(workspace / WORKSPACE_BACKEND, engine.describe())
        source = (f"frames folder at {info['source_fps']:g} fps" if info["source_kind"] == "frames"
                  else f"video at {info['source_fps']:g} fps")
        echo(f"workspace: {workspace.resolve()}  ({source} -> {len(info['frames'])} frames at "
             f"{info['fps']} fps, {len(info['anno_frames'])} annotation frames)")
        if host not in ("127.0.0.1", "localhost", "::1"):
            echo(f"warning: listening on {host}: anyone who can reach it and has the token can edit")
        echo(f"open: {server.url}")
        echo(f"from a laptop: ssh -L {server.server_address[1]}:127.0.0.1:"
             f"{server.server_address[1]} <this-server>, then open the URL above")
        if os.environ.get("REFVPS_ANNOTATE_READY_FILE"):  # tests: where to find the URL
            Path(os.environ["REFVPS_ANNOTATE_READY_FILE"]).write_text(server.url)
        signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
        if open_browser:
            webbrowser.open(server.url)
        server.serve_forever()
    except KeyboardInterrupt:
        echo("stopping")
    finally:
        server.server_close()
        session.close()
