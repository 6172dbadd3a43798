"""Start an annotation session from the command line: ingest, backend, server, browser."""
from __future__ import annotations

import os
import signal
import webbrowser
from pathlib import Path
from typing import Callable

from refvps.annotate.backends import make_backend
from refvps.annotate.ingest import default_workspace, ingest
from refvps.annotate.server import AnnotateServer
from refvps.annotate.session import Session
from refvps.annotate.workspace import Workspace


def _default_device() -> str:
    try:
        import torch
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def serve(clip: str | Path, *, workspace: str | Path | None = None, clip_id: str | None = None,
          frames_fps: float = 24.0, backend: str = "sam2", sam2_config: str | None = None,
          sam2_checkpoint: str | None = None, sam2_image_size: int | None = None,
          device: str | None = None, host: str = "127.0.0.1", port: int = 8765,
          token: str | None = None, export_to: str | Path | None = None,
          open_browser: bool = True, echo: Callable[[str], None] = print) -> None:
    """Serve the annotation page for ``clip`` until interrupted (Ctrl+C or SIGTERM)."""
    workspace = Path(workspace) if workspace else default_workspace(clip)
    info = ingest(clip, workspace, clip_id=clip_id, frames_fps=frames_fps, progress=True)
    engine = make_backend(backend, sam2_config=sam2_config, sam2_checkpoint=sam2_checkpoint,
                          device=device or (_default_device() if backend == "sam2" else "cpu"),
                          sam2_image_size=sam2_image_size)
    session = Session(Workspace(workspace), engine)
    server = AnnotateServer(session, host=host, port=port, token=token, export_to=export_to)
    echo(f"workspace: {workspace.resolve()}  ({len(info['frames'])} frames at 24 fps, "
         f"{len(info['anno_frames'])} annotation frames)")
    if host not in ("127.0.0.1", "localhost", "::1"):
        echo(f"warning: listening on {host}: anyone who can reach it and has the token can edit")
    echo(f"open: {server.url}")
    echo(f"from a laptop: ssh -L {server.server_address[1]}:127.0.0.1:{server.server_address[1]} "
         f"<this-server>, then open the URL above")
    if os.environ.get("REFVPS_ANNOTATE_READY_FILE"):  # tests: where to find the URL
        Path(os.environ["REFVPS_ANNOTATE_READY_FILE"]).write_text(server.url)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        echo("stopping")
    finally:
        server.server_close()
        session.close()
