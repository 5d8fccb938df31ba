"""``make demo``: the main job on faces that ship inside installed packages: Grace Hopper (matplotlib) and the
astronaut Eileen Collins (scikit-image), both public-domain photos, turned into short clips with synthetic camera
motion (the destination with a generated audio track), then ``facelab swap``."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from facelab.io.atomic import ensure_writable_dir


def hopper_image() -> np.ndarray:
    from matplotlib import cbook

    with cbook.get_sample_data("grace_hopper.jpg") as f:
        data = np.frombuffer(f.read(), dtype=np.uint8)
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def astronaut_image() -> np.ndarray:
    from skimage import data

    return np.ascontiguousarray(data.astronaut())


def write_motion_clip(
    image: np.ndarray, path: Path, frames: int = 60, fps: int = 30, size: int = 384, audio: bool = True
) -> Path:
    """An H.264 (+ AAC tone) clip of ``image`` under a slow synthetic pan/zoom/rotation."""
    import av

    h, w = image.shape[:2]
    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": "20", "preset": "veryfast"}
        as_ = None
        if audio:
            as_ = c.add_stream("aac", rate=44100)
            as_.layout = "mono"
        for i in range(frames):
            t = i / frames
            ang = 6 * np.sin(2 * np.pi * t)
            scale = size / min(h, w) * (1.05 + 0.1 * np.sin(np.pi * t))
            m = cv2.getRotationMatrix2D((w / 2 + 20 * np.sin(2 * np.pi * t), h / 2), ang, scale)
            m[:, 2] += (size / 2 - w / 2, size / 2 - h / 2)
            frame = cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
            vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
            vf.pts = i
            for pkt in vs.encode(vf):
                c.mux(pkt)
        for pkt in vs.encode():
            c.mux(pkt)
        if as_ is not None:
            n = int(44100 * frames / fps)
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(n) / 44100)).astype(np.float32)[None]
            for s in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(tone[:, s : s + 1024], format="fltp", layout="mono")
                af.sample_rate = 44100
                af.pts = s
                for pkt in as_.encode(af):
                    c.mux(pkt)
            for pkt in as_.encode():
                c.mux(pkt)
    return path


def main(out: str = "demo-output", iters: int = 300, minutes: float = 5.0) -> int:
    """``facelab swap`` with Grace Hopper as the source (a clip of her photo under camera motion, so the faceset
    has some variety) and the astronaut clip, with a tone as its audio, as the destination. Training stops at
    ``iters`` or after ``minutes``, whichever comes first: a CPU without native bf16 trains about four times slower
    (3.4 s/it on a 2-core AVX2 CPU), and the demo is there to show the pipeline, not the swap."""
    from facelab.config import SwapConfig
    from facelab.swap import swap

    root = ensure_writable_dir(out)
    src = write_motion_clip(hopper_image(), root / "src_grace_hopper.mp4", frames=48, audio=False)
    dst = write_motion_clip(astronaut_image(), root / "dst_astronaut.mp4", frames=60)
    print("facelab demo: a whole swap on package-shipped public-domain photos (Grace Hopper -> astronaut clip).")
    print(
        f"It shows a working pipeline in minutes on a CPU ({iters} iterations of the {SwapConfig.preset} preset or "
        f"{minutes:g} minutes of training, whichever comes first), not a "
        "quality swap: that takes hours of training on real footage."
    )
    rep = swap(
        [src],
        dst,
        root / "swapped.mp4",
        SwapConfig.preset,
        iters=int(iters),
        minutes=float(minutes),
        workdir=root / "work",
        log=lambda m: print(f"  {m}"),
    )
    print(f"video (tagged as synthetic media; see 'facelab inspect'): {rep.output}")
    print(f"contact sheet of merge options: {rep.contact_sheet}")
    print(f"training preview: {rep.preview}; report: {Path(rep.workdir) / 'report.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
