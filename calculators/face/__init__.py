"""Face pipeline numerics and nodes: BlazeFace detection, ROIs, crops, mesh decoding, refinement."""
