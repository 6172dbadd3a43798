"""OpenCV annotation backend on the synthetic test clip: click IoU, propagated IoU, ms/frame.

Run from the repository root: PYTHONPATH=$PWD python benchmarks/annotate_opencv_quality.py
"""
import tempfile, pathlib, time, numpy as np
from tests.annotate.synthetic import write_video
from tests.annotate.conftest import truth_for
from refvps.annotate.ingest import ingest
from refvps.annotate.backends.opencv import OpenCVBackend
d = pathlib.Path(tempfile.mkdtemp()); info = ingest(write_video(d / "c.mp4", 24), d / "ws")
truth = truth_for(info); b = OpenCVBackend()
b.open([d / "ws" / "frames" / f"{f}.jpg" for f in info["anno_frames"]])
iou = lambda a, t: (a & t).sum() / (a | t).sum()
m = b.click(0, np.array([[30, 50], [110, 10]]), np.array([1, 0]))
t = time.perf_counter(); out = list(b.propagate(0, False, 11)); dt = time.perf_counter() - t
print(f"click IoU {iou(m, truth(0)):.3f}; propagated mean IoU {np.mean([iou(x, truth(k)) for k, x in out]):.3f} "
      f"min {min(iou(x, truth(k)) for k, x in out):.3f}; {1000 * dt / 11:.1f} ms/frame")
