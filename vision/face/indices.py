"""Face-mesh index lists (data, no logic beyond small helpers).

Two families:

1. **Refinement maps** (docs/face_pipeline.md §2.5): where the Attention Mesh model's region
   outputs go in the 478-point list. "Left"/"right" here follow the *model's* naming: the
   image-left eye of an upright, unmirrored face (the subject's right eye) is ``LEFT_EYE``.
   The same lists are the model's own ``Landmarks2TransformMatrix`` subsets and the iris
   model's eye-contour order (docs/face_pipeline.md §6).
2. **Drawing regions** (MediaPipe's ``face_mesh_connections``): connection pairs per facial
   region, and :data:`REGION_POINTS`, the ordered unique points of each region under the
   names of the JavaScript ``face-landmarks-detection`` keypoint format ("leftEye" etc.,
   which use the *subject's* left, i.e. the image-right eye: points 263, 362, ...).
"""

from __future__ import annotations

import numpy as np

NUM_MESH = 468
NUM_REFINED = 478

# --- refinement maps (model output order → mesh index) -----------------------------------

LIPS: tuple[int, ...] = (
    # lower outer
    61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291,
    # upper outer (no corners)
    185, 40, 39, 37, 0, 267, 269, 270, 409,
    # lower inner
    78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308,
    # upper inner
    191, 80, 81, 82, 13, 312, 311, 310, 415,
    # lower semi-outer
    76, 77, 90, 180, 85, 16, 315, 404, 320, 307, 306,
    # upper semi-outer
    184, 74, 73, 72, 11, 302, 303, 304, 408,
    # lower semi-inner
    62, 96, 89, 179, 86, 15, 316, 403, 319, 325, 292,
    # upper semi-inner
    183, 42, 41, 38, 12, 268, 271, 272, 407,
)  # fmt: skip

LEFT_EYE: tuple[int, ...] = (
    # lower contour
    33, 7, 163, 144, 145, 153, 154, 155, 133,
    # upper contour (no corners)
    246, 161, 160, 159, 158, 157, 173,
    # halo x2 lower / upper
    130, 25, 110, 24, 23, 22, 26, 112, 243,
    247, 30, 29, 27, 28, 56, 190,
    # halo x3 lower / upper
    226, 31, 228, 229, 230, 231, 232, 233, 244,
    113, 225, 224, 223, 222, 221, 189,
    # halo x4 upper / eyebrow inner
    35, 124, 46, 53, 52, 65,
    # halo x5 lower
    143, 111, 117, 118, 119, 120, 121, 128, 245,
    # halo x5 upper / eyebrow outer
    156, 70, 63, 105, 66, 107, 55, 193,
)  # fmt: skip

RIGHT_EYE: tuple[int, ...] = (
    # lower contour
    263, 249, 390, 373, 374, 380, 381, 382, 362,
    # upper contour
    466, 388, 387, 386, 385, 384, 398,
    # halo x2 lower / upper
    359, 255, 339, 254, 253, 252, 256, 341, 463,
    467, 260, 259, 257, 258, 286, 414,
    # halo x3 lower / upper
    446, 261, 448, 449, 450, 451, 452, 453, 464,
    342, 445, 444, 443, 442, 441, 413,
    # halo x4 / eyebrow inner
    265, 353, 276, 283, 282, 295,
    # halo x5 lower
    372, 340, 346, 347, 348, 349, 350, 357, 465,
    # halo x5 upper / eyebrow outer
    383, 300, 293, 334, 296, 336, 285, 417,
)  # fmt: skip

#: Iris points: centre, right edge, top, left edge, bottom.
LEFT_IRIS: tuple[int, ...] = (468, 469, 470, 471, 472)
RIGHT_IRIS: tuple[int, ...] = (473, 474, 475, 476, 477)

#: Eye contours (lower + upper, 16 points) whose mean z becomes the iris z (attention path).
LEFT_IRIS_Z_AVERAGE: tuple[int, ...] = LEFT_EYE[:16]
RIGHT_IRIS_Z_AVERAGE: tuple[int, ...] = RIGHT_EYE[:16]

#: Landmarks used for rotations: detection→ROI uses detector keypoints 0→1; landmarks→ROI
#: uses mesh points 33→263 (outer eye corners); the iris path's eye ROIs use 33→133 and
#: 362→263 (docs/face_pipeline.md §4.2, §6).
ROI_ROTATION_START = 33
ROI_ROTATION_END = 263
LEFT_EYE_CORNERS: tuple[int, int] = (33, 133)
RIGHT_EYE_CORNERS: tuple[int, int] = (362, 263)

# --- drawing regions (MediaPipe face_mesh_connections, literal order) ---------------------

LIPS_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (61, 146),
    (146, 91),
    (91, 181),
    (181, 84),
    (84, 17),
    (17, 314),
    (314, 405),
    (405, 321),
    (321, 375),
    (375, 291),
    (61, 185),
    (185, 40),
    (40, 39),
    (39, 37),
    (37, 0),
    (0, 267),
    (267, 269),
    (269, 270),
    (270, 409),
    (409, 291),
    (78, 95),
    (95, 88),
    (88, 178),
    (178, 87),
    (87, 14),
    (14, 317),
    (317, 402),
    (402, 318),
    (318, 324),
    (324, 308),
    (78, 191),
    (191, 80),
    (80, 81),
    (81, 82),
    (82, 13),
    (13, 312),
    (312, 311),
    (311, 310),
    (310, 415),
    (415, 308),
)

SUBJECT_LEFT_EYE_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (263, 249),
    (249, 390),
    (390, 373),
    (373, 374),
    (374, 380),
    (380, 381),
    (381, 382),
    (382, 362),
    (263, 466),
    (466, 388),
    (388, 387),
    (387, 386),
    (386, 385),
    (385, 384),
    (384, 398),
    (398, 362),
)

SUBJECT_RIGHT_EYE_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (33, 7),
    (7, 163),
    (163, 144),
    (144, 145),
    (145, 153),
    (153, 154),
    (154, 155),
    (155, 133),
    (33, 246),
    (246, 161),
    (161, 160),
    (160, 159),
    (159, 158),
    (158, 157),
    (157, 173),
    (173, 133),
)

SUBJECT_LEFT_EYEBROW_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (276, 283),
    (283, 282),
    (282, 295),
    (295, 285),
    (300, 293),
    (293, 334),
    (334, 296),
    (296, 336),
)

SUBJECT_RIGHT_EYEBROW_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (46, 53),
    (53, 52),
    (52, 65),
    (65, 55),
    (70, 63),
    (63, 105),
    (105, 66),
    (66, 107),
)

SUBJECT_LEFT_IRIS_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (474, 475),
    (475, 476),
    (476, 477),
    (477, 474),
)

SUBJECT_RIGHT_IRIS_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (469, 470),
    (470, 471),
    (471, 472),
    (472, 469),
)

FACE_OVAL_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (10, 338),
    (338, 297),
    (297, 332),
    (332, 284),
    (284, 251),
    (251, 389),
    (389, 356),
    (356, 454),
    (454, 323),
    (323, 361),
    (361, 288),
    (288, 397),
    (397, 365),
    (365, 379),
    (379, 378),
    (378, 400),
    (400, 377),
    (377, 152),
    (152, 148),
    (148, 176),
    (176, 149),
    (149, 150),
    (150, 136),
    (136, 172),
    (172, 58),
    (58, 132),
    (132, 93),
    (93, 234),
    (234, 127),
    (127, 162),
    (162, 21),
    (21, 54),
    (54, 103),
    (103, 67),
    (67, 109),
    (109, 10),
)

NOSE_CONNECTIONS: tuple[tuple[int, int], ...] = (
    (168, 6),
    (6, 197),
    (197, 195),
    (195, 5),
    (5, 4),
    (4, 1),
    (1, 19),
    (19, 94),
    (94, 2),
    (98, 97),
    (97, 2),
    (2, 326),
    (326, 327),
    (327, 294),
    (294, 278),
    (278, 344),
    (344, 440),
    (440, 275),
    (275, 4),
    (4, 45),
    (45, 220),
    (220, 115),
    (115, 48),
    (48, 64),
    (64, 98),
)


def _ordered_points(*groups: tuple[tuple[int, int], ...]) -> tuple[int, ...]:
    seen: dict[int, None] = {}
    for pairs in groups:
        for a, b in pairs:
            seen.setdefault(a)
            seen.setdefault(b)
    return tuple(seen)


#: Ordered unique points per region, keyed like the JS keypoint format ("leftEye" = the
#: subject's left eye). Iris regions include the iris centre first.
REGION_POINTS: dict[str, tuple[int, ...]] = {
    "lips": _ordered_points(LIPS_CONNECTIONS),
    "leftEye": _ordered_points(SUBJECT_LEFT_EYE_CONNECTIONS),
    "rightEye": _ordered_points(SUBJECT_RIGHT_EYE_CONNECTIONS),
    "leftEyebrow": _ordered_points(SUBJECT_LEFT_EYEBROW_CONNECTIONS),
    "rightEyebrow": _ordered_points(SUBJECT_RIGHT_EYEBROW_CONNECTIONS),
    "leftIris": (473, *_ordered_points(SUBJECT_LEFT_IRIS_CONNECTIONS)),
    "rightIris": (468, *_ordered_points(SUBJECT_RIGHT_IRIS_CONNECTIONS)),
    "faceOval": _ordered_points(FACE_OVAL_CONNECTIONS),
}


def region_names(num_landmarks: int = NUM_REFINED) -> list[str | None]:
    """Per-landmark region name (first region that lists it), ``None`` for other points.

    Iris regions are skipped when ``num_landmarks`` is 468.
    """
    names: list[str | None] = [None] * num_landmarks
    for name, pts in REGION_POINTS.items():
        for p in pts:
            if p < num_landmarks and names[p] is None:
                names[p] = name
    return names


def as_array(indices: tuple[int, ...]) -> np.ndarray:
    """An index tuple as an int64 array (for fancy indexing)."""
    return np.asarray(indices, dtype=np.int64)
