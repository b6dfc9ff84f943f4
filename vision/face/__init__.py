"""Pure face numerics, MediaPipe's rules written as functions on numpy arrays:
detection decoding and NMS, ROIs, the affine crop, landmark refinement, index sets,
mesh connections, smoothing filters and the detector backends.
"""
