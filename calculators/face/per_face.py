"""What the per-face extras nodes (blendshapes, geometry) share: the model-option check
and the FACES + IMAGE → one result per face loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import numpy as np
from facegraph import CalculatorContext, Input, SideInput
from facegraph.vision.face.types import FaceLandmarks

__all__ = ["check_model_reference", "is_enabled", "map_faces"]

R = TypeVar("R")


def check_model_reference(value: str | None) -> str | None:
    """Options validator: an unknown model name or a missing file can never work, so it
    fails when the graph loads (``facegraph validate``) rather than when it starts."""
    if value is not None:
        from facegraph.models.store import model_reference_problem

        problem = model_reference_problem(value)
        if problem is not None:
            raise ValueError(problem)
    return value


def is_enabled(ctx: CalculatorContext, port: SideInput[bool]) -> bool:
    """The optional ENABLED side packet (default: enabled). A disabled node loads nothing:
    the graphs pair it with a Gate closed by the same side packet, so it never runs."""
    if not ctx.count(port):
        return True
    value = ctx.side(port)
    if value is None:
        return True
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"side packet {port.tag} must be a bool, got {value!r}")
    return bool(value)


def map_faces(
    ctx: CalculatorContext,
    faces_port: Input[list[FaceLandmarks]],
    image_port: Input[np.ndarray],
    per_face: Callable[[FaceLandmarks, int, int], R],
) -> list[R] | None:
    """``per_face(face, width, height)`` for every face of this timestamp, in order; None
    when there is no FACES packet. Errors name the node, the face and the timestamp."""
    faces = ctx.get(faces_port)
    if faces is None:
        return None
    if not faces:
        return []
    image = ctx.get(image_port)
    if image is None:
        raise ValueError(
            f"node '{ctx.node_name}': FACES at timestamp {ctx.timestamp} came without their "
            f"{image_port.tag} (its size scales the normalised landmarks)"
        )
    height, width = image.shape[:2]
    out: list[R] = []
    for i, face in enumerate(faces):
        try:
            out.append(per_face(face, width, height))
        except ValueError as exc:
            raise ValueError(
                f"node '{ctx.node_name}': face {i} at timestamp {ctx.timestamp}: {exc}"
            ) from None
    return out
