import numpy as np

from facelab.geometry.polygon import points_in_polygon


def test_square_and_concave_polygon():
    square = np.array([[0, 0], [10, 0], [10, 10], [0, 10]], float)
    pts = np.array([[5, 5], [15, 5], [-1, 5], [5, 11], [9.9, 0.1]])
    assert points_in_polygon(pts, square).tolist() == [True, False, False, False, True]
    u = np.array([[0, 0], [9, 0], [9, 9], [6, 9], [6, 3], [3, 3], [3, 9], [0, 9]], float)  # a U
    assert points_in_polygon(np.array([[1.5, 6], [4.5, 6], [7.5, 6], [4.5, 1]]), u).tolist() == [
        True,
        False,
        True,
        True,
    ]
