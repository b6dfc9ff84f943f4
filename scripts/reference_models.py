"""Generate reference outputs of the five MediaPipe models, computed by MediaPipe itself.

Run with the *reference* venv (mediapipe 0.10.14; never a runtime or CI dependency)::

    "$FACEGRAPH_MEDIAPIPE_PYTHON" scripts/reference_models.py [--image PATH] [--out DIR]

For every model it builds a small MediaPipe graph::

    image ─ ImageToTensorCalculator (full image, model size, model range)
          ─ InferenceCalculator (XNNPACK delegate; MediaPipe's custom-op resolver from
                                 TfLiteCustomOpResolverCalculator)
          ─ SplitTensorVectorCalculator ─ TensorsToFloatsCalculator, one per output tensor

so the stored values are the raw output tensors of MediaPipe's own interpreter, with
MediaPipe's own kernels for the Attention Mesh model's custom ops. The input tensor is
also read back (TensorsToFloatsCalculator on ImageToTensor's output) and compared with
``pixels * float32(range / 255) + min`` (one rounding, like a fused multiply-add),
the formula the tests use to rebuild it.

Inputs (written to ``--out``, with their origin beside them in ``README.md``) are crops
of ``astronaut.png`` (scikit-image, NASA, public domain) already at the model input size,
so ImageToTensor's warp is the identity and the tests need no OpenCV to reproduce them:

- ``face_crop_192.png``: square crop around the face (landmark models, full-range detector)
- ``scene_128.png``: the whole photo at 128×128 (short-range detector)
- ``eye_crop_64.png``: square crop around the image-left eye (iris model)

Outputs: ``reference_outputs.npz`` (float32; key ``<model>/<output tensor name>``; the
detectors' regressors are stored only for the 24 highest-scoring anchors, with their
indices, to keep the fixture small) and ``reference_outputs.json`` (how, with what,
and the input-tensor check).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from whole_files import write, write_npz, write_png

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = ROOT / "tests" / "fixtures" / "faces" / "astronaut.png"
DEFAULT_OUT = ROOT / "tests" / "fixtures" / "models"
TOP_ANCHORS = 24

# model -> (file under mediapipe/modules, input image fixture, float range, output names)
MODELS: dict[str, tuple[str, str, tuple[float, float], list[str]]] = {
    "face_detection_short_range": (
        "face_detection/face_detection_short_range.tflite",
        "scene_128.png",
        (-1.0, 1.0),
        ["regressors", "classificators"],
    ),
    "face_detection_full_range_sparse": (
        "face_detection/face_detection_full_range_sparse.tflite",
        "face_crop_192.png",
        (-1.0, 1.0),
        ["Identity", "Identity_1"],
    ),
    "face_landmark": (
        "face_landmark/face_landmark.tflite",
        "face_crop_192.png",
        (0.0, 1.0),
        ["conv2d_21", "conv2d_31"],
    ),
    "face_landmark_with_attention": (
        "face_landmark/face_landmark_with_attention.tflite",
        "face_crop_192.png",
        (0.0, 1.0),
        [
            "output_mesh_identity",
            "output_lips",
            "output_left_eye",
            "output_right_eye",
            "output_left_iris",
            "output_right_iris",
            "conv_faceflag",
        ],
    ),
    "iris_landmark": (
        "iris_landmark/iris_landmark.tflite",
        "eye_crop_64.png",
        (0.0, 1.0),
        ["output_eyes_contours_and_brows", "output_iris"],
    ),
}


def graph_config(model_file: str, size: tuple[int, int], rng: tuple[float, float], n: int) -> Any:
    from google.protobuf import text_format
    from mediapipe.calculators.core import split_vector_calculator_pb2  # noqa: F401
    from mediapipe.calculators.tensor import (  # noqa: F401
        image_to_tensor_calculator_pb2,
        inference_calculator_pb2,
        tensors_to_floats_calculator_pb2,
    )
    from mediapipe.framework import calculator_pb2

    w, h = size
    ranges = "\n".join(f"ranges {{ begin: {i} end: {i + 1} }}" for i in range(n))
    split_outputs = "\n".join(f'output_stream: "tensor_{i}"' for i in range(n))
    floats = "\n".join(
        f"""node {{
  calculator: "TensorsToFloatsCalculator"
  input_stream: "TENSORS:tensor_{i}"
  output_stream: "FLOATS:floats_{i}"
}}
output_stream: "floats_{i}" """
        for i in range(n)
    )
    text = f"""
input_stream: "image"
output_stream: "input_floats"
node {{
  calculator: "ImageToTensorCalculator"
  input_stream: "IMAGE:image"
  output_stream: "TENSORS:input_tensors"
  options {{
    [mediapipe.ImageToTensorCalculatorOptions.ext] {{
      output_tensor_width: {w}
      output_tensor_height: {h}
      keep_aspect_ratio: false
      output_tensor_float_range {{ min: {rng[0]} max: {rng[1]} }}
    }}
  }}
}}
node {{
  calculator: "TensorsToFloatsCalculator"
  input_stream: "TENSORS:input_tensors"
  output_stream: "FLOATS:input_floats"
}}
node {{
  calculator: "TfLiteCustomOpResolverCalculator"
  output_side_packet: "OP_RESOLVER:op_resolver"
}}
node {{
  calculator: "InferenceCalculator"
  input_stream: "TENSORS:input_tensors"
  output_stream: "TENSORS:output_tensors"
  input_side_packet: "OP_RESOLVER:op_resolver"
  options {{
    [mediapipe.InferenceCalculatorOptions.ext] {{
      model_path: "mediapipe/modules/{model_file}"
      delegate {{ xnnpack {{}} }}
    }}
  }}
}}
node {{
  calculator: "SplitTensorVectorCalculator"
  input_stream: "output_tensors"
  {split_outputs}
  options {{
    [mediapipe.SplitVectorCalculatorOptions.ext] {{
      {ranges}
    }}
  }}
}}
{floats}
"""
    return text_format.Parse(text, calculator_pb2.CalculatorGraphConfig())


def run_model(
    model_file: str, rgb: np.ndarray, rng: tuple[float, float], n_outputs: int
) -> tuple[np.ndarray, list[np.ndarray]]:
    import mediapipe as mp
    from mediapipe.python._framework_bindings import resource_util
    from mediapipe.python.packet_creator import create_image_frame
    from mediapipe.python.packet_getter import get_float_list

    resource_util.set_resource_dir(str(Path(mp.__file__).resolve().parents[1]))
    h, w = rgb.shape[:2]
    config = graph_config(model_file, (w, h), rng, n_outputs)
    graph = mp.CalculatorGraph(graph_config=config)
    got: dict[str, np.ndarray] = {}

    def keep(name: str, packet: Any) -> None:
        got[name] = np.asarray(get_float_list(packet), dtype=np.float32)

    for name in ["input_floats", *(f"floats_{i}" for i in range(n_outputs))]:
        graph.observe_output_stream(name, keep)
    graph.start_run()
    frame = create_image_frame(image_format=mp.ImageFormat.SRGB, data=np.ascontiguousarray(rgb))
    graph.add_packet_to_input_stream("image", frame.at(0))
    graph.close()
    return got["input_floats"], [got[f"floats_{i}"] for i in range(n_outputs)]


def make_inputs(image_path: Path) -> dict[str, np.ndarray]:
    """The three input crops (RGB uint8), from MediaPipe's FaceMesh landmarks on the photo."""
    bgr = cv2.imread(str(image_path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise SystemExit(f"cannot read {image_path}")
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    H, W = rgb.shape[:2]
    import mediapipe as mp

    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True) as fm:
        res = fm.process(rgb)
    if not res.multi_face_landmarks:
        raise SystemExit(f"MediaPipe found no face in {image_path}")
    pts = np.array([(p.x * W, p.y * H) for p in res.multi_face_landmarks[0].landmark])

    def square_crop(cx: float, cy: float, side: float, size: int) -> np.ndarray:
        # Axis-aligned square around (cx, cy), edge-replicated if it leaves the photo,
        # then area-resampled to the model size.
        x0, y0 = round(cx - side / 2), round(cy - side / 2)
        s = round(side)
        padded = cv2.copyMakeBorder(rgb, s, s, s, s, cv2.BORDER_REPLICATE)
        crop = padded[y0 + s : y0 + 2 * s, x0 + s : x0 + 2 * s]
        return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)

    lo, hi = pts[:468].min(axis=0), pts[:468].max(axis=0)
    centre = (lo + hi) / 2
    face = square_crop(centre[0], centre[1], 1.5 * float((hi - lo).max()), 192)
    eye_a, eye_b = pts[33], pts[133]
    eye_c = (eye_a + eye_b) / 2
    eye = square_crop(eye_c[0], eye_c[1], 2.3 * float(np.abs(eye_b - eye_a).max()), 64)
    scene = cv2.resize(rgb, (128, 128), interpolation=cv2.INTER_AREA)
    return {"face_crop_192.png": face, "scene_128.png": scene, "eye_crop_64.png": eye}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    import mediapipe as mp

    args.out.mkdir(parents=True, exist_ok=True)
    inputs = make_inputs(args.image)
    for name, rgb in inputs.items():
        write_png(args.out / name, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    # Read back what was written: the PNG is the fixture the tests use.
    inputs = {
        name: cv2.cvtColor(cv2.imread(str(args.out / name)), cv2.COLOR_BGR2RGB) for name in inputs
    }

    arrays: dict[str, np.ndarray] = {}
    notes: dict[str, Any] = {}
    modules = Path(mp.__file__).resolve().parent / "modules"
    for model, (file, image_name, rng, names) in MODELS.items():
        rgb = inputs[image_name]
        tensor_in, outs = run_model(file, rgb, rng, len(names))
        # The formula tests use to rebuild the input tensor from the PNG: MediaPipe's
        # convertTo is a fused multiply-add (one rounding) with a float32 scale.
        scale = np.float32((rng[1] - rng[0]) / 255.0)
        rebuilt = (rgb.astype(np.float64) * float(scale) + rng[0]).astype(np.float32)
        in_diff = float(np.abs(rebuilt.reshape(-1) - tensor_in).max())
        entry: dict[str, Any] = {
            "model_file": f"mediapipe/modules/{file}",
            "model_sha256": hashlib.sha256((modules / file).read_bytes()).hexdigest(),
            "input_image": image_name,
            "input_range": list(rng),
            "input_tensor_max_abs_diff_vs_formula": in_diff,
            "outputs": {},
        }
        if model.startswith("face_detection"):
            regressors, scores = outs
            n_anchors = scores.size
            regressors = regressors.reshape(n_anchors, -1)
            top = np.argsort(-scores, kind="stable")[:TOP_ANCHORS]
            arrays[f"{model}/{names[1]}"] = scores.reshape(1, n_anchors, 1)
            arrays[f"{model}/{names[0]}:top_anchors"] = top.astype(np.int32)
            arrays[f"{model}/{names[0]}:top_rows"] = regressors[top]
            entry["outputs"] = {
                names[0]: f"rows of the {TOP_ANCHORS} best-scoring anchors only",
                names[1]: "all",
            }
        else:
            for name, values in zip(names, outs, strict=True):
                arrays[f"{model}/{name}"] = values
                entry["outputs"][name] = f"{values.size} values"
        notes[model] = entry
        print(f"{model}: input tensor diff vs formula {in_diff:g}; outputs {names}")

    write_npz(args.out / "reference_outputs.npz", arrays)
    meta = {
        "generated_by": "scripts/reference_models.py",
        # The venv by its variable, never this machine's path.
        "command": "$FACEGRAPH_MEDIAPIPE_PYTHON " + " ".join(shlex.quote(a) for a in sys.argv),
        "utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mediapipe": mp.__version__,
        "numpy": np.__version__,
        "opencv_for_crops": cv2.__version__,
        "platform": platform.platform(),
        "graph": "ImageToTensorCalculator -> InferenceCalculator (xnnpack, "
        "TfLiteCustomOpResolverCalculator) -> SplitTensorVectorCalculator -> "
        "TensorsToFloatsCalculator",
        "source_image": f"{args.image.name} (scikit-image astronaut.png; NASA, public domain)",
        "models": notes,
    }
    write(args.out / "reference_outputs.json", json.dumps(meta, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
