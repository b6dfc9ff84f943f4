"""Pure face numerics, MediaPipe's rules written as functions on numpy arrays:
detection decoding and NMS, ROIs, the affine crop, landmark refinement, index sets,
mesh connections, smoothing filters, the detector backends, and MediaPipe Tasks'
blendshapes (``blendshapes``) and face geometry (``geometry``: transformation matrix,
metric landmarks, head pose).
"""
