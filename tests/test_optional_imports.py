"""Training and merging from a faceset need neither dlib nor MediaPipe (a GPU machine lent for training may lack
both): their modules, and the benchmark that drives them there, import with both blocked; building a dlib model then
says what is missing in one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("dlib", "mediapipe", "face_recognition_models"):
            raise ImportError("blocked " + name)
sys.meta_path.insert(0, Block())
"""


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCK + code], cwd=REPO, capture_output=True, text=True, timeout=120)


def test_train_merge_and_the_quality_benchmark_import_without_dlib_or_mediapipe() -> None:
    r = run(
        "import facelab.train.loop, facelab.merge.pipeline, facelab.extract.pipeline, facelab.evaluate.report\n"
        "import benchmarks.quality_per_hour\n"
        "print('ok')"
    )
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr[-2000:]


def test_building_a_dlib_model_without_dlib_is_a_one_line_error() -> None:
    r = run(
        "from facelab.faces.detect import make_detector\n"
        "from facelab.errors import FacelabError\n"
        "try:\n    make_detector('dlib-hog')\nexcept FacelabError as e:\n    print(e)\n"
    )
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip() == "dlib is not installed (run 'make test' or 'pip install -r requirements.txt')"
