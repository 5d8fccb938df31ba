"""Draw and re-extract renders, in this process or in a pool of worker processes.

dlib's identity descriptor alone takes ~75 ms per face on one core and holds the GIL, so renders are spread over
processes (``spawn``: nothing native is forked). Each worker builds its own finder, describer and FaceMesh once and
keeps the last lifted source face: jobs arrive grouped by source.
"""

from __future__ import annotations

import multiprocessing as mp
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facelab.augment.reextract import Reextracted, reextract
from facelab.augment.render.draw import Edit, MouthTexture, draw
from facelab.augment.render.lift import FaceModel, lift
from facelab.faces.detect.base import Box
from facelab.faces.finder import FaceFinder
from facelab.faces.identity import FaceDescriber
from facelab.faces.landmarks.facemesh import FaceMeshLandmarker
from facelab.faceset.meta import FaceMeta
from facelab.faceset.store import read_face
from facelab.geometry.facetype import FaceType


@dataclass(frozen=True)
class RenderSetup:
    """Everything a worker needs (picklable)."""

    faces: list[tuple[Path, FaceMeta]]  # the real source faces
    reference: np.ndarray  # (128,) mean dlib descriptor of the faceset
    face_type: str
    size: int
    mouth: MouthTexture


@dataclass
class Task:
    source: int
    edit: Edit
    extra: dict[str, Any]  # provenance for the render's metadata


@dataclass
class Outcome:
    image: np.ndarray | None  # the drawn frame; None when FaceMesh found no face on the source
    found: Reextracted | None  # None: no face in the render


class Renderer:
    def __init__(self, setup: RenderSetup) -> None:
        self.setup = setup
        self.finder = FaceFinder()
        self.describer = FaceDescriber()
        self._facemesh: FaceMeshLandmarker | None = None
        self._cached: tuple[int, FaceModel | None] | None = None

    def __call__(self, task: Task) -> Outcome:
        model = self.model(task.source)
        if model is None:
            return Outcome(None, None)
        image = draw(model, task.edit, self.setup.mouth)
        _, src = self.setup.faces[task.source]
        found = reextract(
            image, self.finder, self.describer, self.setup.reference, FaceType.parse(self.setup.face_type),
            self.setup.size, source_file=src.source_file, frame_index=src.frame_index or 0, extra=task.extra,
        )  # fmt: skip
        return Outcome(image, found)

    def model(self, i: int) -> FaceModel | None:
        """Source face ``i`` lifted to 3D (the last one is kept)."""
        if self._cached is None or self._cached[0] != i:
            self._cached = (i, self._lift(i))
        return self._cached[1]

    def _lift(self, i: int) -> FaceModel | None:
        image, meta = read_face(self.setup.faces[i][0])
        mesh = mesh_in_crop(meta)
        if mesh is None:
            if self._facemesh is None:
                self._facemesh = FaceMeshLandmarker()
            x0, y0 = meta.landmarks.min(0)
            x1, y1 = meta.landmarks.max(0)
            found = self._facemesh.landmarks(image, Box(x0, y0, x1, y1, 1.0, "landmarks"))
            if found is None or found.mesh is None:
                return None
            mesh = found.mesh
        return lift(image, mesh, meta.yaw, meta.pitch, meta.roll)

    def close(self) -> None:
        self.finder.close()
        if self._facemesh is not None:
            self._facemesh.close()


def mesh_in_crop(meta: FaceMeta) -> np.ndarray | None:
    """The stored FaceMesh (source px) moved into the aligned crop, or None when the faceset has none."""
    if meta.mesh is None or len(meta.mesh) < 468 or not np.all(np.isfinite(meta.mesh)):
        return None
    mesh = np.asarray(meta.mesh, np.float64).copy()
    t = meta.transform
    mesh[:, :2] = mesh[:, :2] @ t[:, :2].T + t[:, 2]
    mesh[:, 2] *= np.sqrt(abs(np.linalg.det(t[:, :2])))
    return mesh


class RenderPool:
    """``map`` tasks over ``workers`` processes (1: in this process)."""

    def __init__(self, setup: RenderSetup, workers: int) -> None:
        self.workers = workers
        self._local: Renderer | None = None
        self._pool: Any = None
        if workers > 1:
            self._pool = mp.get_context("spawn").Pool(workers, initializer=_init_worker, initargs=(setup,))
        else:
            self._local = Renderer(setup)

    def map(self, tasks: list[Task]) -> list[Outcome]:
        if self._pool is not None:
            return self._pool.map(_work, tasks, chunksize=max(1, len(tasks) // self.workers))
        assert self._local is not None
        return [self._local(t) for t in tasks]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool.join()
        if self._local is not None:
            self._local.close()


_renderer: Renderer | None = None  # one per worker process


def _init_worker(setup: RenderSetup) -> None:
    global _renderer
    _renderer = Renderer(setup)


def _work(task: Task) -> Outcome:
    assert _renderer is not None
    return _renderer(task)
