"""Face pipeline nodes: detectors, the per-face landmark model, refinement, ROIs, smoothing."""
