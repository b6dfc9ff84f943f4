"""LiveView node: shows frames on a local web page or a window."""

from __future__ import annotations

from typing import Any

import numpy as np
from facegraph import Calculator, CalculatorContext, Input, StrictOptions, register
from facegraph.vision.live import (
    LiveServer,
    LiveViewError,
    LiveWindow,
    parse_serve_address,
)
from pydantic import Field


@register("LiveView")
class LiveView(Calculator["LiveView.Options"]):
    """Shows IMAGE live: in a local web page (``serve: "8080"``) and/or a window (``show``).

    FACES (optional, a list) sets the faces listed on the page (count, track ids, scores).
    The page's FPS is the rate at which images arrive here. Nothing is ever queued for a
    slow viewer.
    """

    class Options(StrictOptions):
        serve: str | None = None
        """[HOST:]PORT of the web page (loopback unless a host is given)."""
        show: bool = False
        """Open an OpenCV window (needs a GUI build of OpenCV)."""
        title: str = Field("facegraph", min_length=1)
        """Window title."""

    IMAGE: Input[np.ndarray] = Input("IMAGE", np.ndarray, doc="HxWx3 uint8 RGB overlay")
    FACES: Input[Any] = Input("FACES", optional=True, doc="faces shown (for the count)")

    def open(self, ctx: CalculatorContext) -> None:
        if not self.options.serve and not self.options.show:
            raise LiveViewError("LiveView needs 'serve: PORT' and/or 'show: true'")
        self._server: LiveServer | None = None
        self._window: LiveWindow | None = None
        if self.options.show:
            self._window = LiveWindow(self.options.title)
        if self.options.serve:
            host, port = parse_serve_address(self.options.serve)
            self._server = LiveServer(host, port)

    def process(self, ctx: CalculatorContext) -> None:
        image = ctx.get(self.IMAGE)
        if image is None:
            return
        faces = ctx.get(self.FACES)
        shown = [] if faces is None else list(faces) if isinstance(faces, list) else [faces]
        if self._server is not None:
            self._server.publish(image, faces=shown)  # count, track ids and scores
        if self._window is not None:
            self._window.show(image)

    def close(self, ctx: CalculatorContext) -> None:
        if getattr(self, "_server", None) is not None:
            self._server.close()  # type: ignore[union-attr]
        if getattr(self, "_window", None) is not None:
            self._window.close()  # type: ignore[union-attr]
