import numpy as np

from facelab.imaging.raster import rasterize, render_textured


def test_a_square_of_two_triangles_covers_exactly_its_pixels():
    xy = np.array([[2.0, 2.0], [9.0, 2.0], [9.0, 9.0], [2.0, 9.0]])
    tris = np.array([[0, 1, 2], [0, 2, 3]])
    r = rasterize(xy, np.zeros(4), tris, (12, 12))
    expect = np.zeros((12, 12), bool)
    expect[2:10, 2:10] = True
    assert np.array_equal(r.covered, expect)
    assert np.allclose(r.bary[r.covered].sum(1), 1.0, atol=1e-6)


def test_the_nearer_triangle_wins_whatever_the_drawing_order():
    xy = np.array([[0.0, 0.0], [20.0, 0.0], [0.0, 20.0], [2.0, 2.0], [19.0, 2.0], [2.0, 19.0]])
    tris = np.array([[0, 1, 2], [3, 4, 5]])
    for z in ([5, 5, 5, 1, 1, 1], [1, 1, 1, 5, 5, 5]):
        r = rasterize(xy, np.array(z, float), tris, (21, 21))
        assert r.tri[6, 6] == (1 if z[3] < z[0] else 0)
    # intersecting planes: the winner changes along the line where their depths cross
    r = rasterize(xy, np.array([0, 10, 0, 5, 5, 5], float), tris, (21, 21))
    assert r.tri[5, 3] == 0 and r.tri[5, 15] == 1


def test_texture_is_carried_by_the_corner_coordinates():
    rng = np.random.default_rng(0)
    tex = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)
    xy = np.array([[0.0, 0.0], [31.0, 0.0], [31.0, 31.0], [0.0, 31.0]])
    tris = np.array([[0, 1, 2], [0, 2, 3]])
    out, r = render_textured(tex, xy[tris], xy, np.zeros(4), tris, (32, 32))  # identity mapping
    assert r.covered.all() and np.abs(out.astype(int) - tex).max() <= 1
    flipped = xy.copy()
    flipped[:, 0] = 31 - flipped[:, 0]  # texture coordinates mirrored left-right
    out, _ = render_textured(tex, flipped[tris], xy, np.zeros(4), tris, (32, 32))
    assert np.abs(out.astype(int) - tex[:, ::-1]).max() <= 1


def test_degenerate_and_offscreen_triangles_draw_nothing():
    xy = np.array([[0.0, 0.0], [5.0, 5.0], [10.0, 10.0], [-30.0, -30.0], [-20.0, -30.0], [-20.0, -20.0]])
    r = rasterize(xy, np.zeros(6), np.array([[0, 1, 2], [3, 4, 5]]), (16, 16))
    assert not r.covered.any()
