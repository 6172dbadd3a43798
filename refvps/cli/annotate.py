"""``refvps annotate CLIP`` (the web app), ``refvps annotate export`` and ``refvps agreement``."""
from __future__ import annotations

import json
import sys

import click


class _DefaultToOpen(click.Group):
    """``refvps annotate CLIP ...`` runs the ``open`` subcommand unless CLIP names another one."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["open", *args]
        return super().parse_args(ctx, args)


@click.group("annotate", cls=_DefaultToOpen)
def annotate_command() -> None:
    """Annotate a clip with SAM2 assistance in the browser (refvps annotate CLIP), or export."""


@annotate_command.command("open")
@click.argument("clip", type=click.Path(exists=True))
@click.option("--workspace", type=click.Path(file_okay=False), default=None,
              help="Workspace folder (default: CLIP.refvps next to the clip). Reopening resumes.")
@click.option("--clip-id", default=None, help="Clip id in the dataset (default: from the file name).")
@click.option("--frames-fps", type=float, default=24.0, show_default=True,
              help="Frame rate of CLIP when it is a folder of frames.")
@click.option("--backend", type=click.Choice(["sam2", "opencv"]), default="sam2",
              show_default=True, help="Segmentation backend (opencv needs no torch).")
@click.option("--sam2-config", default=None,
              help="SAM2 Hydra config, e.g. configs/sam2.1/sam2.1_hiera_t.yaml (default: from "
                   "the checkpoint name).")
@click.option("--sam2-checkpoint", type=click.Path(dir_okay=False), default=None,
              help="SAM2 checkpoint .pt (default: $REFVPS_SAM2_CHECKPOINT).")
@click.option("--sam2-image-size", type=int, default=None,
              help="SAM2 input size (default 1024; 512 is 5-7x faster on CPU, off-distribution).")
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default=None,
              help="Device for SAM2 (default: cuda when available).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Interface to bind; anything but loopback exposes the app to the network.")
@click.option("--port", type=int, default=8765, show_default=True, help="Port (0 = any free).")
@click.option("--token", default=None, help="Access token (default: a random one).")
@click.option("--export-to", type=click.Path(file_okay=False), default=None,
              help="Dataset root the page's Export button writes to.")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
def open_command(clip, workspace, clip_id, frames_fps, backend, sam2_config, sam2_checkpoint,
                 sam2_image_size, device, host, port, token, export_to, no_browser):
    """Ingest CLIP (video or frames folder) and serve the annotation page."""
    from refvps.annotate.app import serve

    serve(clip, workspace=workspace, clip_id=clip_id, frames_fps=frames_fps, backend=backend,
          sam2_config=sam2_config, sam2_checkpoint=sam2_checkpoint,
          sam2_image_size=sam2_image_size, device=device, host=host, port=port, token=token,
          export_to=export_to, open_browser=not no_browser, echo=click.echo)


@annotate_command.command("export")
@click.argument("workspace", type=click.Path(exists=True, file_okay=False))
@click.option("--to", "to", required=True, type=click.Path(file_okay=False),
              help="Dataset root (holding ref-vps/) or the ref-vps folder itself.")
@click.option("--require-reviewed", is_flag=True,
              help="Refuse to export while an annotation frame is not marked reviewed.")
@click.option("--replace", is_flag=True, help="Replace a clip of the same id in the dataset.")
@click.option("--clip-id", default=None,
              help="Export under this id (letters, digits, '.', '_', '-'; default: the "
                   "workspace's).")
def export_command(workspace, to, require_reviewed, replace, clip_id):
    """Write WORKSPACE's clip into a refvps-format 0.1 dataset (merged, atomic, validated).

    Example: refvps annotate export clip.mp4.refvps --to DATA_ROOT --replace
    """
    from refvps.annotate.export import export_workspace
    from refvps.annotate.workspace import Workspace

    ws = Workspace(workspace)
    dataset = export_workspace(ws, to, require_reviewed=require_reviewed, replace=replace,
                               clip_id=clip_id)
    click.echo(f"exported {ws.clip_id if clip_id is None else clip_id}: {len(ws.frames)} frames, "
               f"{len(ws.anno_frames)} "
               f"annotation frames -> {dataset}")


@click.command("agreement")
@click.argument("root_a", type=click.Path(exists=True, file_okay=False))
@click.argument("root_b", type=click.Path(exists=True, file_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False), default=None,
              help="Write the per-frame IoU rows to this CSV file.")
def agreement_command(root_a, root_b, as_json, csv_path):
    """Inter-annotator mIoU between two annotations of the same clips (Ignore excluded)."""
    from refvps.agreement import agreement

    frames, summary = agreement(root_a, root_b)
    if csv_path:
        frames.to_csv(csv_path, index=False)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    for clip, value in summary["per_clip"].items():
        click.echo(f"  {clip:<24} {100 * value:6.2f}")
    click.echo(f"mIoU over {summary['clips']} clip(s), {summary['frames']} frames: "
               f"{100 * summary['miou']:.2f}%  (frame-pooled {100 * summary['frame_mean']:.2f}%)")
    for side in ("only_in_a", "only_in_b"):
        if summary[side]:
            click.echo(f"  not compared ({side.replace('_', ' ')}): {', '.join(summary[side])}",
                       err=True)
    sys.stdout.flush()
