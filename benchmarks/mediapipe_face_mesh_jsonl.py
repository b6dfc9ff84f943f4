"""The obvious MediaPipe 0.10.14 script that ``facegraph run face_mesh --output x.jsonl``
is compared with (``benchmarks/bench_e2e.py``): decode with OpenCV, ``FaceMesh.process``,
``json.dumps`` the landmarks (pixels), write a line; optionally draw the mesh and write a
video. Runs under a python that has mediapipe, e.g. ``$FACEGRAPH_MEDIAPIPE_PYTHON``::

    $FACEGRAPH_MEDIAPIPE_PYTHON benchmarks/mediapipe_face_mesh_jsonl.py CLIP OUT.jsonl
        [--max-frames N] [--render OUT.mp4] [--static]

Prints one JSON line: frames, seconds (first decode to last write, model loading excluded),
frames_per_s, cpu_s. Imports only OpenCV, numpy and mediapipe (never facegraph).
"""

from __future__ import annotations

import argparse
import json
import time

import cv2
import mediapipe as mp


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("clip")
    ap.add_argument("output")
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--render", default=None)
    ap.add_argument("--static", action="store_true")
    args = ap.parse_args()

    mesh = mp.solutions.face_mesh.FaceMesh(
        static_image_mode=args.static, max_num_faces=1, refine_landmarks=True
    )
    cap = cv2.VideoCapture(args.clip)
    if not cap.isOpened():
        raise SystemExit(f"cannot open {args.clip}")
    writer = None
    frames = 0
    t0, c0 = time.perf_counter(), time.process_time()
    with open(args.output, "w") as out:
        while args.max_frames is None or frames < args.max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            h, w = bgr.shape[:2]
            result = mesh.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            faces = [
                [[p.x * w, p.y * h, p.z * w] for p in face.landmark]
                for face in result.multi_face_landmarks or []
            ]
            out.write(json.dumps({"frame": frames, "faces": faces}) + "\n")
            if args.render:
                for face in result.multi_face_landmarks or []:
                    mp.solutions.drawing_utils.draw_landmarks(
                        bgr, face, mp.solutions.face_mesh.FACEMESH_TESSELATION, None
                    )
                if writer is None:
                    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
                    writer = cv2.VideoWriter(args.render, fourcc, 25.0, (w, h))
                writer.write(bgr)
            frames += 1
    if writer is not None:
        writer.release()
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "frames": frames,
                "seconds": seconds,
                "frames_per_s": frames / seconds if seconds else 0.0,
                "cpu_s": time.process_time() - c0,
            }
        )
    )


if __name__ == "__main__":
    main()
