"""End-to-end numeric check: facegraph's face numerics + LiteRT vs the MediaPipe fixtures.

Not a test: a development script showing that the pieces (crop, detector decoding, NMS,
ROIs, mesh decoding, refinement, projection, tracking loop) fit together and reproduce
MediaPipe 0.10.14's reference outputs in ``tests/fixtures/reference``::

    python scripts/face_e2e_check.py [--cases mesh_static_astronaut_refine ...]

It prints, per case, the detector score/box deviation, ROI deviation and landmark
deviation in pixels (mean / max), and for videos the face counts per frame.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from facegraph.app import synthetic
from facegraph.models import resolve_cache_dir
from facegraph.models.inference import TfLiteModel
from facegraph.vision.face.detection import FULL_RANGE, SHORT_RANGE, postprocess_detections
from facegraph.vision.face.image_to_tensor import image_to_tensor
from facegraph.vision.face.landmarks import (
    decode_landmarks,
    face_passes,
    face_presence,
    project_landmarks,
    refine_attention_outputs,
)
from facegraph.vision.face.rois import associate_rects, detection_to_roi, landmarks_to_roi
from facegraph.vision.face.types import NormalizedRect

ROOT = Path(__file__).resolve().parents[1]
FIX = ROOT / "tests" / "fixtures"


class Pipeline:
    """MediaPipe's face_landmark_front_cpu, spelled out with facegraph's numerics."""

    def __init__(self, refine: bool, max_faces: int, static: bool) -> None:
        cache = resolve_cache_dir()
        self.detector = TfLiteModel(cache / SHORT_RANGE.model_file)
        name = "face_landmark_with_attention.tflite" if refine else "face_landmark.tflite"
        self.mesh = TfLiteModel(cache / name)
        self.refine, self.max_faces, self.static = refine, max_faces, static
        self.prev: list[NormalizedRect] = []
        self.last_detections: list[Any] = []
        self.last_det_rects: list[NormalizedRect] = []

    def detect(self, image: np.ndarray) -> list[Any]:
        crop = image_to_tensor(image, None, 128, 128, (-1.0, 1.0), "zero", keep_aspect=True)
        out = list(self.detector.run(crop.tensor).values())
        return postprocess_detections(out[0], out[1], SHORT_RANGE, crop.matrix, 0.5, self.max_faces)

    def landmarks(self, image: np.ndarray, roi: NormalizedRect) -> tuple[np.ndarray, float]:
        crop = image_to_tensor(image, roi, 192, 192, (0.0, 1.0), "replicate")
        outs = list(self.mesh.run(crop.tensor).values())
        if self.refine:
            pts = refine_attention_outputs(outs[:6])
            score = face_presence(outs[6])
        else:
            pts = decode_landmarks(outs[0], 468)
            score = face_presence(outs[1])
        return project_landmarks(pts, roi), score

    def process(self, image: np.ndarray) -> list[np.ndarray]:
        h, w = image.shape[:2]
        prev = [] if self.static else self.prev
        det_rects: list[NormalizedRect] = []
        self.last_detections = []
        if len(prev) < self.max_faces:
            self.last_detections = self.detect(image)
            det_rects = [detection_to_roi(d, w, h) for d in self.last_detections]
        self.last_det_rects = det_rects
        faces, self.prev = [], []
        for roi in associate_rects([det_rects, prev]):
            pts, score = self.landmarks(image, roi)
            if face_passes(score, 0.5):
                faces.append(pts)
                self.prev.append(landmarks_to_roi(pts, w, h))
        return faces


def load_rgb(path: Path) -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(path), cv2.IMREAD_COLOR)[:, :, ::-1])


def frames_for(manifest: dict, source: dict, images: dict) -> list[np.ndarray]:
    if "image" in source:
        return [images[source["image"]]]
    video = manifest["videos"][source["video"]]
    photos = []
    for p in video["photos"]:
        img, c = images[p["image"]], p["crop_y0_y1_x0_x1"]
        photos.append(img if c is None else np.ascontiguousarray(img[c[0] : c[1], c[2] : c[3]]))
    frames = list(
        synthetic.moving_face_video(
            photos, video["kind"], video["n_frames"], video["width"], video["height"]
        )
    )
    if "frames" in source:
        frames = frames[source["frames"][0] : source["frames"][1]]
    return frames


def check_mesh(case: dict, frames: list[np.ndarray]) -> None:
    ref = np.load(FIX / "reference" / case["file"])
    s = case["settings"]
    pipe = Pipeline(s["refine_landmarks"], s["max_num_faces"], s["static_image_mode"])
    dev, count_ok, det_dev, roi_dev = [], 0, [], []
    t0 = time.perf_counter()
    for i, frame in enumerate(frames):
        h, w = frame.shape[:2]
        faces = pipe.process(frame)
        n_ref = int(ref["landmarks_count"][i])
        count_ok += len(faces) == n_ref
        nd = int(ref["detections_count"][i])
        if nd == len(pipe.last_detections):
            for j, d in enumerate(pipe.last_detections):
                det_dev.append(abs(d.score - ref["detections_score"][i, j]))
                box = np.array([d.xmin, d.ymin, d.width, d.height])
                det_dev.append(np.abs(box - ref["detections_box"][i, j]).max())
            for j, r in enumerate(pipe.last_det_rects):
                roi_dev.append(np.abs(r.as_array() - ref["rects_from_detections"][i, j]).max())
        for j in range(min(len(faces), n_ref)):
            d = (faces[j][:, :2] - ref["landmarks"][i, j, :, :2]) * np.array([w, h])
            dev.append(np.hypot(d[:, 0], d[:, 1]))
    ms = (time.perf_counter() - t0) / len(frames) * 1e3
    allp = np.concatenate(dev) if dev else np.zeros(1)
    print(
        f"{case['name']:<45} frames {len(frames):>3}  face counts equal {count_ok}/{len(frames)}  "
        f"det max dev {max(det_dev, default=0):.1e}  roi max dev {max(roi_dev, default=0):.1e}  "
        f"landmarks mean {allp.mean():.4f} px max {allp.max():.4f} px  ({ms:.1f} ms/frame)"
    )


def check_detection(case: dict, images: dict, manifest: dict) -> None:
    ref = np.load(FIX / "reference" / case["file"])
    cfg = FULL_RANGE if case["settings"]["model_selection"] == 1 else SHORT_RANGE
    model = TfLiteModel(resolve_cache_dir() / cfg.model_file)
    worst = 0.0
    counts = []
    for name in case["input"]["images"]:
        img = (
            images[name]
            if name in images
            else frames_for(manifest, case["input"]["two_frame0"], images)[0]
        )
        crop = image_to_tensor(
            img, None, cfg.input_size, cfg.input_size, (-1.0, 1.0), "zero", keep_aspect=True
        )
        out = list(model.run(crop.tensor).values())
        # MediaPipe 0.10.14 applies the graph default (0.5 short, 0.6 full range): the Python
        # API's min_detection_confidence does not reach the full-range graph.
        dets = postprocess_detections(out[0], out[1], cfg, crop.matrix)
        n_ref = len(ref[f"{name}__score"])
        counts.append(f"{name} {len(dets)}/{n_ref}")
        for j, d in enumerate(dets[:n_ref]):
            worst = max(
                worst,
                abs(d.score - ref[f"{name}__score"][j]),
                float(
                    np.abs(
                        np.array([d.xmin, d.ymin, d.width, d.height]) - ref[f"{name}__box"][j]
                    ).max()
                ),
                float(np.abs(d.keypoints - ref[f"{name}__keypoints"][j]).max()),
            )
    print(f"{case['name']:<45} counts {', '.join(counts)}  max dev {worst:.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", nargs="*", help="case names (default: all)")
    args = ap.parse_args()
    manifest = json.loads((FIX / "reference" / "manifest.json").read_text())
    images = {n: load_rgb(FIX / m["file"]) for n, m in manifest["images"].items()}
    for case in manifest["cases"]:
        if args.cases and case["name"] not in args.cases:
            continue
        if case["solution"] == "face_mesh":
            check_mesh(case, frames_for(manifest, case["input"], images))
        else:
            check_detection(case, images, manifest)


if __name__ == "__main__":
    main()
