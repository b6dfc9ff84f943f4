"""Reference images of MediaPipe's own face drawing, for tests/test_drawing.py.

Run with the mediapipe 0.10.14 interpreter (never a runtime or CI dependency)::

    "$FACEGRAPH_MEDIAPIPE_PYTHON" scripts/reference_drawing.py

Draws the astronaut reference landmarks (tests/fixtures/reference/
mesh_static_astronaut_refine.npz, MediaPipe's own output) on a black 512x512 BGR image
with ``mp.solutions.drawing_utils.draw_landmarks``:

- ``drawing_mediapipe_styles.png``: tessellation, contours and irises with the
  ``drawing_styles`` presets (the usual face-mesh example);
- ``drawing_mediapipe_points.png``: the contours with draw_landmarks' default specs
  (red points with a white ring, white lines).

PNG, so the test can compare pixel for pixel.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from mediapipe.framework.formats import landmark_pb2
from mediapipe.python.solutions import drawing_styles, drawing_utils, face_mesh_connections
from whole_files import write_png

ROOT = Path(__file__).resolve().parent.parent
REF = ROOT / "tests" / "fixtures" / "reference"


def main() -> int:
    points = np.load(REF / "mesh_static_astronaut_refine.npz")["landmarks"][0, 0]
    landmarks = landmark_pb2.NormalizedLandmarkList(
        landmark=[landmark_pb2.NormalizedLandmark(x=x, y=y, z=z) for x, y, z in points.tolist()]
    )
    styles = np.zeros((512, 512, 3), np.uint8)
    for connections, style in (
        (
            face_mesh_connections.FACEMESH_TESSELATION,
            drawing_styles.get_default_face_mesh_tesselation_style(),
        ),
        (
            face_mesh_connections.FACEMESH_CONTOURS,
            drawing_styles.get_default_face_mesh_contours_style(),
        ),
        (
            face_mesh_connections.FACEMESH_IRISES,
            drawing_styles.get_default_face_mesh_iris_connections_style(),
        ),
    ):
        drawing_utils.draw_landmarks(
            styles,
            landmarks,
            connections,
            landmark_drawing_spec=None,
            connection_drawing_spec=style,
        )
    points_image = np.zeros((512, 512, 3), np.uint8)
    drawing_utils.draw_landmarks(points_image, landmarks, face_mesh_connections.FACEMESH_CONTOURS)
    for name, image in (("styles", styles), ("points", points_image)):
        path = REF / f"drawing_mediapipe_{name}.png"
        write_png(path, image)
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
