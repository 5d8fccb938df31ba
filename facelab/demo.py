"""``make demo``: run the main job on faces that ship inside installed packages.

Until the swap pipeline exists this is extraction: Grace Hopper (matplotlib) and the astronaut Eileen Collins
(scikit-image), both public-domain photos, are written as images, plus a short synthetic clip (the astronaut
photo with camera motion), and extracted into aligned facesets.
"""

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


def main(out: str = "demo-output") -> int:
    from facelab.extract.pipeline import extract

    root = ensure_writable_dir(out)
    inputs = ensure_writable_dir(root / "inputs")
    cv2.imwrite(str(inputs / "grace_hopper.jpg"), cv2.cvtColor(hopper_image(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(inputs / "astronaut.png"), cv2.cvtColor(astronaut_image(), cv2.COLOR_RGB2BGR))
    clip = write_motion_clip(astronaut_image(), root / "astronaut_motion.mp4")
    print("facelab demo: extraction on package-shipped public-domain faces")
    for src, dst in ((inputs, root / "faceset_photos"), (clip, root / "faceset_clip")):
        s = extract(src, dst, force=True)
        print(f"  {src} -> {dst}: {s.frames_read} frames, {s.faces_written} faces, {s.fps:.1f} frames/s")
    print(
        f"facesets written under {root.resolve()} (each face carries its metadata: facelab faceset info {root / 'faceset_clip'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
