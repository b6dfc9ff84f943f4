"""The vision library that the nodes and the application share: frame sources, video
and image writers, landmark records, drawing, the live page, and (in ``face``) the pure
face numerics: detection decoding, ROIs, the crop, landmark refinement, filters.

Nothing here knows about graphs or the scheduler: a tool can use it without running
a graph, and each node in ``facegraph.calculators`` is a thin wrapper over it.
"""
