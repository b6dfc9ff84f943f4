"""The one error type of the model layer."""

from __future__ import annotations

from facegraph.errors import FacegraphError


class ModelError(FacegraphError):
    """A model could not be named, fetched, found or verified; the message says how to fix it."""
