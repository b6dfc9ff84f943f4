"""Jitter and lag of face landmarks with and without One Euro smoothing.

Run::

    python benchmarks/bench_smoothing.py [--graph face_mesh] [--noise 4] [--frames 90]

Inputs are synthetic frames made from a real photo (``tests/fixtures/faces/astronaut.png``)
with :mod:`facegraph.app.synthetic`, plus independent Gaussian pixel noise on
every frame (sensor-like; ``--noise`` = sigma in 8-bit levels), run through the face graph in
tracking mode. Then, on the same landmark sequence:

- **jitter** (still face): mean frame-to-frame 2-D landmark motion in % of the interocular
  distance (eye centres), frames after a short warm-up;
- **lag** (face sliding sideways at a constant speed, in interocular distances per second,
  and on the project's standard "moving" video with turns and zoom): the delay ``d`` (in
  frames, 0.05 steps) that minimises the mean distance between the smoothed landmarks at
  frame ``t`` and the *noise-free* run's landmarks (same frames without noise) interpolated
  at ``t - d``;
- **error in motion**: that mean distance at the best ``d`` (% IOD), next to the unsmoothed
  noisy run's distance from the noise-free run at ``d = 0``: how much noise smoothing
  removes while the face moves.

Smoothing is :class:`MultiFaceSmoother`, which is what the ``LandmarksSmoothing`` node runs.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "fixtures" / "faces" / "astronaut.png"
FRAME_US = 33_333
WARMUP = 8


def load_photo(path: Path) -> np.ndarray:
    import cv2

    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        sys.exit(f"cannot read {path}")
    return np.ascontiguousarray(bgr[:, :, ::-1])


def still_frames(photo: np.ndarray, n: int, noise: float, seed: int = 0) -> list[np.ndarray]:
    from facegraph.app.synthetic import FacePlacement, render_frame

    base = render_frame([photo], [FacePlacement(320, 260, 0.9, 0.0)]).astype(np.float32)
    rng = np.random.default_rng(seed)
    return [_noisy(base, rng, noise) for _ in range(n)]


def sliding_frames(
    photo: np.ndarray, n: int, noise: float, px_per_frame: float, seed: int = 1
) -> list[np.ndarray]:
    from facegraph.app.synthetic import FacePlacement, render_frame

    rng = np.random.default_rng(seed)
    x0 = 320 - px_per_frame * (n - 1) / 2
    return [
        _noisy(
            render_frame([photo], [FacePlacement(x0 + px_per_frame * i, 260, 0.9, 0.0)]).astype(
                np.float32
            ),
            rng,
            noise,
        )
        for i in range(n)
    ]


def moving_frames(photo: np.ndarray, n: int, noise: float, seed: int = 2) -> list[np.ndarray]:
    from facegraph.app.synthetic import moving_face_video

    rng = np.random.default_rng(seed)
    return [
        _noisy(f.astype(np.float32), rng, noise) for f in moving_face_video([photo], n_frames=n)
    ]


def _noisy(frame: np.ndarray, rng: np.random.Generator, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return frame.astype(np.uint8)
    noisy = frame + rng.normal(0.0, sigma, frame.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def run_graph(spec: Any, frames: list[np.ndarray], sides: dict[str, Any]) -> np.ndarray:
    """(T, N, 3) pixel landmarks of the first face (NaN where no face)."""
    from facegraph import Graph

    got: dict[int, Any] = {}
    graph = Graph(spec, mode="deterministic")
    graph.observe("faces", lambda p: got.__setitem__(p.timestamp, p.value))
    graph.start(sides)
    for i, f in enumerate(frames):
        graph.add_packet("image", f, i * FRAME_US)
    graph.close_all_inputs()
    graph.wait_until_done()
    h, w = frames[0].shape[:2]
    n = None
    out: list[np.ndarray | None] = []
    for i in range(len(frames)):
        faces = got.get(i * FRAME_US) or []
        if faces:
            px = np.asarray(faces[0].pixels(w, h), np.float64)
            n = len(px)
            out.append(px)
        else:
            out.append(None)
    if n is None:
        sys.exit("the graph found no face in any frame")
    return np.stack([o if o is not None else np.full((n, 3), np.nan) for o in out])


def smooth(seq: np.ndarray, params: tuple[float, float, float]) -> np.ndarray:
    from facegraph.vision.face.filters import MultiFaceSmoother

    sm = MultiFaceSmoother(*params)
    out = np.full_like(seq, np.nan)
    for i, pts in enumerate(seq):
        if np.isnan(pts).any():
            sm.lost_all(i * FRAME_US / 1e6)
            continue
        out[i] = sm.apply([pts], i * FRAME_US / 1e6)[0]
    return out


def iod(pts: np.ndarray) -> float:
    from facegraph.vision.face.filters import face_scale

    return face_scale(pts)


def jitter(seq: np.ndarray) -> float:
    """Mean frame-to-frame 2-D landmark motion, % IOD, after the warm-up."""
    vals = []
    for t in range(WARMUP + 1, len(seq)):
        if np.isnan(seq[t]).any() or np.isnan(seq[t - 1]).any():
            continue
        d = np.linalg.norm(seq[t, :, :2] - seq[t - 1, :, :2], axis=1).mean()
        vals.append(100 * d / iod(seq[t]))
    return float(np.mean(vals))


def lag(raw: np.ndarray, smoothed: np.ndarray, max_lag: float = 4.0) -> tuple[float, float]:
    """(lag in frames, mean distance in % IOD at that lag) of ``smoothed`` behind the
    reference sequence ``raw``; see the module doc."""
    best = (math.inf, 0.0)
    T = len(raw)
    for d in np.arange(0.0, max_lag + 1e-9, 0.05):
        errs = []
        for t in range(WARMUP + math.ceil(max_lag), T):
            lo = t - d
            i0 = math.floor(lo)
            f = lo - i0
            a, b = raw[i0], raw[min(i0 + 1, T - 1)]
            if np.isnan(a).any() or np.isnan(b).any() or np.isnan(smoothed[t]).any():
                continue
            ref = (1 - f) * a[:, :2] + f * b[:, :2]
            e = np.linalg.norm(smoothed[t, :, :2] - ref, axis=1).mean()
            errs.append(100 * e / iod(raw[t]))
        m = float(np.mean(errs))
        if m < best[0]:
            best = (m, float(d))
    return best[1], best[0]


def main() -> None:
    from facegraph import load_graph
    from facegraph.app.run_cli import parse_side_packets
    from facegraph.calculators.face import nodes as _nodes  # registers the face nodes
    from facegraph.vision.face.filters import DEFAULT_BETA, DEFAULT_D_CUTOFF, DEFAULT_MIN_CUTOFF

    assert _nodes
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--graph", default="face_mesh", help="tracking face graph (name or YAML)")
    ap.add_argument("--side", action="append", default=[], metavar="NAME=VALUE")
    ap.add_argument("--frames", type=int, default=90)
    ap.add_argument("--noise", type=float, default=4.0, help="pixel noise sigma (8-bit levels)")
    ap.add_argument("--photo", type=Path, default=PHOTO)
    ap.add_argument("--min-cutoff", type=float, default=DEFAULT_MIN_CUTOFF)
    ap.add_argument("--beta", type=float, default=DEFAULT_BETA)
    ap.add_argument("--d-cutoff", type=float, default=DEFAULT_D_CUTOFF)
    ap.add_argument(
        "--speeds", default="0.5,1.5,3", help="sliding speeds in interocular distances per second"
    )
    args = ap.parse_args()
    params = (args.min_cutoff, args.beta, args.d_cutoff)
    spec = load_graph(args.graph)
    sides = parse_side_packets(args.side)
    photo = load_photo(args.photo)

    print(
        f"graph {args.graph}; photo {args.photo.name}; noise sigma {args.noise}; "
        f"{args.frames} frames at 30 fps; One Euro min_cutoff {params[0]} Hz, beta {params[1]}, "
        f"d_cutoff {params[2]} Hz"
    )
    still = run_graph(spec, still_frames(photo, args.frames, args.noise), sides)
    face_iod = iod(still[WARMUP])
    j_raw, j_sm = jitter(still), jitter(smooth(still, params))
    print(f"\nstill face (IOD {face_iod:.1f} px): jitter in % IOD per frame")
    print(f"  unsmoothed {j_raw:.3f}   smoothed {j_sm:.3f}   ratio {j_sm / j_raw:.2f}")

    print(
        "\nmoving face: lag (frames) behind the noise-free run, and mean distance (% IOD)"
        " from it: unsmoothed (lag 0) / smoothed (at its lag)"
    )
    print(f"  {'motion':<34}{'lag':>6}{'unsmoothed':>12}{'smoothed':>10}")
    motions: list[tuple[str, Any]] = [
        (
            f"slide {v:g} IOD/s ({v * face_iod / 30:.1f} px/frame)",
            lambda sigma, seed, v=v: sliding_frames(
                photo, args.frames, sigma, v * face_iod / 30.0, seed
            ),
        )
        for v in [float(s) for s in args.speeds.split(",") if s]
    ]
    motions.append(
        (
            "synthetic moving video",
            lambda sigma, seed: moving_frames(photo, args.frames, sigma, seed),
        )
    )
    for label, make in motions:
        clean = run_graph(spec, make(0.0, 0), sides)
        noisy = run_graph(spec, make(args.noise, 1), sides)
        _, e_raw = lag(clean, noisy, max_lag=0.0)
        d, e_sm = lag(clean, smooth(noisy, params))
        print(f"  {label:<34}{d:>6.2f}{e_raw:>12.3f}{e_sm:>10.3f}")


if __name__ == "__main__":
    main()
