"""The manifest of the MediaPipe models facegraph uses: names, files, sizes and sha256.

The data lives in ``manifest.json`` beside this module (package data) so that it is
reviewed as data and can be read by tools other than Python; this module turns it
into typed, immutable records.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

from facegraph.models.errors import ModelError


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model file: where it is in the source wheel and what its bytes must hash to."""

    name: str
    """Short name used everywhere in facegraph, e.g. ``face_landmark_with_attention``."""
    file: str
    """File name in the cache directory (a bare name, never a path)."""
    member: str
    """Exact member name inside the source wheel."""
    size: int
    """Size in bytes."""
    sha256: str
    """Lower-case hex sha256 of the file."""
    description: str

    def __post_init__(self) -> None:
        # The cache path is built from ``file`` alone; refuse anything that could leave it.
        if not self.file or "/" in self.file or "\\" in self.file or self.file in {".", ".."}:
            raise ValueError(f"model {self.name!r}: file must be a bare name, got {self.file!r}")
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise ValueError(f"model {self.name!r}: sha256 must be 64 lower-case hex digits")
        if self.size <= 0:
            raise ValueError(f"model {self.name!r}: size must be positive")


@dataclass(frozen=True, slots=True)
class WheelSource:
    """The PyPI wheel the models are extracted from.

    The wheel tags are pinned (not the running interpreter's) because the model files
    are identical in every platform wheel, and a pinned wheel also works on Pythons
    and platforms for which the package has no wheel of its own.
    """

    package: str
    version: str
    index: str
    python_version: str
    implementation: str
    abi: str
    platform: str
    note: str = ""

    @property
    def requirement(self) -> str:
        """The pip requirement string, e.g. ``mediapipe==0.10.14``."""
        return f"{self.package}=={self.version}"

    def pip_download_args(self) -> list[str]:
        """Arguments after ``pip`` that download exactly this wheel, without dependencies."""
        return [
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "--platform",
            self.platform,
            "--python-version",
            self.python_version,
            "--implementation",
            self.implementation,
            "--abi",
            self.abi,
            self.requirement,
        ]


def _load() -> tuple[WheelSource, dict[str, ModelSpec]]:
    text = resources.files("facegraph.models").joinpath("manifest.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    src = data["source"]
    source = WheelSource(
        package=src["package"],
        version=src["version"],
        index=src["index"],
        note=src.get("note", ""),
        **src["wheel"],
    )
    models: dict[str, ModelSpec] = {}
    for entry in data["models"]:
        spec = ModelSpec(**entry)
        if spec.name in models:
            raise ValueError(f"manifest.json: duplicate model name {spec.name!r}")
        models[spec.name] = spec
    return source, models


SOURCE: WheelSource
_MODELS: dict[str, ModelSpec]
SOURCE, _MODELS = _load()

MODELS: Mapping[str, ModelSpec] = MappingProxyType(_MODELS)
"""Every model in the manifest, by short name, in manifest order."""


def get_spec(name: str) -> ModelSpec:
    """The manifest entry called ``name``; a :class:`ModelError` lists the valid names."""
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(unknown_name_message(name)) from None


def unknown_name_message(name: str) -> str:
    """'unknown model' text with a did-you-mean suggestion and the valid names."""
    stem = name[: -len(".tflite")] if name.endswith(".tflite") else name
    close = difflib.get_close_matches(stem, list(MODELS), n=1, cutoff=0.6)
    if not close and stem:  # a fragment such as "iris" or "attention"
        close = [n for n in MODELS if stem.lower() in n]
    if len(close) == 1:
        hint = f" Did you mean {close[0]!r}?"
    elif close:
        hint = f" Did you mean one of {', '.join(repr(n) for n in close)}?"
    else:
        hint = ""
    valid = ", ".join(MODELS)
    return (
        f"unknown model {name!r}.{hint} Valid names: {valid}. "
        "To use your own model, pass the path of its .tflite file instead."
    )
