"""Matplotlib figures drawn headless and kept as PNG bytes: the plots of ``facegraph bench
--plot`` and ``facegraph eval --report``, which their callers write whole
(:mod:`facegraph.atomic_files`)."""

from __future__ import annotations

import io
from typing import Any

__all__ = ["png_bytes", "pyplot"]


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the headless Agg backend (never opens a window); raises
    ImportError without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig: Any) -> bytes:
    """``fig`` as PNG bytes; the figure is closed."""
    data = io.BytesIO()
    fig.savefig(data, format="png")
    pyplot().close(fig)
    return data.getvalue()
