"""Write ``vision/face/connections.py`` from MediaPipe's ``face_mesh_connections``.

The face-mesh edge lists (tessellation, contours, irises) are data: this script copies
them once from the installed ``mediapipe`` package so that facegraph never needs
mediapipe at run time. Run it with the reference venv::

    $FACEGRAPH_MEDIAPIPE_PYTHON scripts/extract_connections.py

MediaPipe stores each list as a frozenset of (a, b) pairs; we sort them so the
generated file is stable across runs and Python versions.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

# (name in the generated module, attribute of mediapipe's face_mesh_connections, comment)
LISTS: tuple[tuple[str, str, str], ...] = (
    ("TESSELATION", "FACEMESH_TESSELATION", "the triangle edges of the 468-point mesh"),
    ("LIPS", "FACEMESH_LIPS", "outer and inner lip contours"),
    ("LEFT_EYE", "FACEMESH_LEFT_EYE", "the subject's left eye (image right)"),
    ("LEFT_EYEBROW", "FACEMESH_LEFT_EYEBROW", "the subject's left eyebrow"),
    ("LEFT_IRIS", "FACEMESH_LEFT_IRIS", "the subject's left iris (points 474-477)"),
    ("RIGHT_EYE", "FACEMESH_RIGHT_EYE", "the subject's right eye (image left)"),
    ("RIGHT_EYEBROW", "FACEMESH_RIGHT_EYEBROW", "the subject's right eyebrow"),
    ("RIGHT_IRIS", "FACEMESH_RIGHT_IRIS", "the subject's right iris (points 469-472)"),
    ("FACE_OVAL", "FACEMESH_FACE_OVAL", "the face outline"),
    ("NOSE", "FACEMESH_NOSE", "the nose"),
)

HEADER = '''"""Face-mesh connection lists (edges between landmark indices), as MediaPipe draws them.

GENERATED FILE - do not edit. Made by ``scripts/extract_connections.py`` from
``mediapipe.python.solutions.face_mesh_connections`` of mediapipe {version}; MediaPipe
keeps them as frozensets, here they are sorted tuples of (a, b) index pairs.

"Left"/"right" are the *subject's* (MediaPipe's naming in this module): ``LEFT_EYE`` is
the image-right eye of an upright, unmirrored face. ``CONTOURS`` is the union MediaPipe
calls ``FACEMESH_CONTOURS`` (lips, eyes, eyebrows, face oval; no irises, no nose).
"""

from __future__ import annotations

'''


def _format_pairs(name: str, comment: str, pairs: list[tuple[int, int]]) -> str:
    lines = [f"#: {comment[0].upper()}{comment[1:]} ({len(pairs)} edges).", f"{name}: Edges = ("]
    row: list[str] = []
    for a, b in pairs:
        row.append(f"({a}, {b}),")
        if len(row) == 8:
            lines.append("    " + " ".join(row))
            row = []
    if row:
        lines.append("    " + " ".join(row))
    lines.append(")  # fmt: skip")
    return "\n".join(lines) + "\n"


def generate() -> str:
    import mediapipe
    from mediapipe.python.solutions import face_mesh_connections as fmc

    parts = [HEADER.format(version=mediapipe.__version__)]
    parts.append("Edges = tuple[tuple[int, int], ...]\n\n")
    for name, attr, comment in LISTS:
        pairs = sorted((int(a), int(b)) for a, b in getattr(fmc, attr))
        parts.append(_format_pairs(name, comment, pairs) + "\n")
    contours = sorted((int(a), int(b)) for a, b in fmc.FACEMESH_CONTOURS)
    parts.append(_format_pairs("CONTOURS", "lips, eyes, eyebrows and face oval", contours))
    return "".join(parts)


def main() -> int:
    default = Path(__file__).resolve().parent.parent / "vision" / "face" / "connections.py"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=default, help="file to write")
    args = parser.parse_args()
    from whole_files import write

    write(args.out, generate())
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
