"""Annotate node: draws faces and detections on each frame."""

from __future__ import annotations

from typing import Any

import numpy as np
from facegraph import Calculator, CalculatorContext, Input, Output, StrictOptions, register
from facegraph.vision.annotate import (
    default_annotators,
)
from facegraph.vision.face.types import Detection, FaceLandmarks


@register("Annotate")
class Annotate(Calculator["Annotate.Options"]):
    """Draws faces (mesh, contours, irises, boxes) and detections on IMAGE; emits IMAGE.

    FACES (list of FaceLandmarks) and DETECTIONS (list of Detection) are both optional;
    when neither has a packet at a timestamp, the image passes unchanged. The input
    image is never modified (a copy is drawn on).
    """

    class Options(StrictOptions):
        mesh: bool = True
        """Draw the tessellation."""
        contours: bool = True
        """Draw lips, eyes, eyebrows and face oval."""
        irises: bool = True
        """Draw iris circles (478-point faces)."""
        boxes: bool = True
        """Draw boxes with scores, and detection keypoints."""

    IMAGE_IN: Input[np.ndarray] = Input("IMAGE", np.ndarray, doc="HxWx3 uint8 RGB")
    FACES: Input[Any] = Input("FACES", optional=True, doc="list of FaceLandmarks")
    DETECTIONS: Input[Any] = Input("DETECTIONS", optional=True, doc="list of Detection")
    IMAGE_OUT: Output[np.ndarray] = Output("IMAGE", np.ndarray, doc="the drawn copy")

    def open(self, ctx: CalculatorContext) -> None:
        o = self.options
        self._annotator = default_annotators(
            mesh=o.mesh, contours=o.contours, irises=o.irises, boxes=o.boxes
        )
        self._ports = [p for p in (self.FACES, self.DETECTIONS) if ctx.count(p)]

    def process(self, ctx: CalculatorContext) -> None:
        image = ctx.get(self.IMAGE_IN)
        if image is None:
            return
        items: list[Any] = []
        for port in self._ports:
            value = ctx.get(port)
            if value is None:
                continue
            if isinstance(value, (FaceLandmarks, Detection)):
                items.append(value)
            else:
                items.extend(value)
        out = np.array(image, copy=True, order="C")
        if items:
            out = self._annotator.annotate(out, items)
        out.flags.writeable = False
        ctx.emit(self.IMAGE_OUT, out)
