"""MediaPipe Tasks ``.task`` bundles: the face landmarker's four files in one zip.

    from facegraph.models import open_task_bundle

    bundle = open_task_bundle()                       # the manifest's face_landmarker.task
    bundle = open_task_bundle("my/face_landmarker.task")   # a user's bundle
    bundle.model_path("face_blendshapes")             # -> a verified local .tflite file

Members are addressed by the same names as the manifest models they correspond to
(:data:`TASK_MEMBERS`): ``face_landmarker_detector``, ``face_landmarks_v2``,
``face_blendshapes`` and ``face_geometry_metadata``.

A user's bundle may hold other versions of the models: it is accepted when every model's
input and output tensors have the shapes and dtypes facegraph feeds and reads
(:data:`TENSOR_SHAPES`) and the geometry metadata parses, and refused otherwise with one
line naming the file, the member, the tensor and both shapes. ``verify=True`` also demands
that every member is byte-identical to the manifest's (sha256). Members identical to the
manifest's are stored in the model cache under their manifest names (so a user who has
the official bundle needs no download); other members are stored in the cache's
``bundles/<sha256 of the bundle>/`` folder. Every file is written beside its final name
and moved into place, so a reader never sees a partial file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np
from facegraph.models.errors import ModelError
from facegraph.models.manifest import MODELS, ModelSpec

__all__ = ["TASK_BUNDLE", "TASK_MEMBERS", "TENSOR_SHAPES", "TaskBundle", "open_task_bundle"]

TASK_BUNDLE = "face_landmarker"
"""Manifest name of the MediaPipe Tasks face landmarker bundle."""

TASK_MEMBERS: Mapping[str, str] = MappingProxyType(
    {name: spec.member for name, spec in MODELS.items() if spec.bundle == TASK_BUNDLE}
)
"""Manifest model name -> member name inside the ``.task`` zip."""

_Shapes = tuple[tuple[tuple[int, ...], ...], tuple[tuple[int, ...], ...]]

TENSOR_SHAPES: Mapping[str, _Shapes] = MappingProxyType(
    {
        # (input shapes, output shapes), in the model's tensor order; all float32.
        "face_landmarker_detector": (((1, 128, 128, 3),), ((1, 896, 16), (1, 896, 1))),
        "face_landmarks_v2": (((1, 256, 256, 3),), ((1, 1, 1, 1434), (1, 1, 1, 1), (1, 1))),
        "face_blendshapes": (((1, 146, 2),), ((52,),)),
    }
)
"""The tensor shapes facegraph's nodes feed and read, per ``.tflite`` member."""

_GEOMETRY = "face_geometry_metadata"
_MAX_MEMBER_BYTES = 256 << 20
"""No face landmarker member comes near this (the largest is 2.6 MB): refuse zip bombs."""
_CANONICAL_VERTICES = 468

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class TaskBundle:
    """An opened, checked ``.task`` bundle: where each member's file is."""

    path: Path
    """The ``.task`` file."""
    sha256: str
    """sha256 of the ``.task`` file."""
    paths: Mapping[str, Path]
    """Manifest model name (see :data:`TASK_MEMBERS`) -> local file of that member."""
    member_sha256: Mapping[str, str]
    """Manifest model name -> sha256 of that member."""

    @property
    def is_official(self) -> bool:
        """True when every member is byte-identical to the manifest's."""
        return all(MODELS[n].sha256 == h for n, h in self.member_sha256.items())

    def model_path(self, name: str) -> Path:
        """The local file of member ``name`` (a key of :data:`TASK_MEMBERS`)."""
        try:
            return self.paths[name]
        except KeyError:
            raise ModelError(
                f"{self.path}: a .task bundle has no model {name!r}; "
                f"its models are {', '.join(self.paths)}"
            ) from None


def open_task_bundle(
    path: PathLike | None = None,
    *,
    verify: bool = False,
    cache_dir: PathLike | None = None,
) -> TaskBundle:
    """Open and check a face landmarker ``.task`` bundle (default: the manifest's, fetched
    on first use); :class:`ModelError` with one line naming the file for a corrupt or
    truncated zip, a missing member, a member whose sha256 differs from the manifest's
    (only with ``verify=True``), a model whose tensors do not fit, or bad geometry metadata.
    """
    from facegraph.models.store import model_path, resolve_cache_dir

    if path is None:
        bundle = model_path(TASK_BUNDLE, cache_dir=cache_dir)
        cached = {name: model_path(name, cache_dir=cache_dir) for name in TASK_MEMBERS}
        return TaskBundle(
            bundle,
            MODELS[TASK_BUNDLE].sha256,
            MappingProxyType(cached),
            MappingProxyType({name: MODELS[name].sha256 for name in TASK_MEMBERS}),
        )
    source = Path(path).expanduser().absolute()
    if source.is_dir():
        raise ModelError(f"{source} is a directory, not a .task bundle")
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read .task bundle {source}: {exc.strerror or exc}") from exc
    members = _read_members(source, data)
    hashes = {name: hashlib.sha256(content).hexdigest() for name, content in members.items()}
    if verify:
        for name, actual in hashes.items():
            spec = MODELS[name]
            if actual != spec.sha256:
                raise ModelError(
                    f"{source}: member {spec.member} has sha256 {actual}, but the manifest's "
                    f"{MODELS[TASK_BUNDLE].file} has {spec.sha256} (verify=True accepts "
                    "only the official models)"
                )
    for name, content in members.items():
        _check_member(source, name, content, official=hashes[name] == MODELS[name].sha256)
    directory = resolve_cache_dir(cache_dir)
    bundle_sha = hashlib.sha256(data).hexdigest()
    paths: dict[str, Path] = {}
    for name, content in members.items():
        spec = MODELS[name]
        if hashes[name] == spec.sha256:
            # The official member: store it under its manifest name (cheap checks later).
            paths[name] = _store_official(source, spec, content, directory)
        else:
            target = directory / "bundles" / bundle_sha[:32] / spec.member
            paths[name] = _store(source, spec.member, content, target)
    return TaskBundle(source, bundle_sha, MappingProxyType(paths), MappingProxyType(hashes))


def _read_members(source: Path, data: bytes) -> dict[str, bytes]:
    import io

    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ModelError(
            f"{source}: not a valid .task bundle (a zip): corrupt or truncated ({exc})"
        ) from None
    members: dict[str, bytes] = {}
    with zf:
        names = set(zf.namelist())
        for name, member in TASK_MEMBERS.items():
            if member not in names:
                present = ", ".join(sorted(names)) or "nothing"
                raise ModelError(
                    f"{source}: .task bundle has no member {member} (it holds {present})"
                )
            size = zf.getinfo(member).file_size
            if size > _MAX_MEMBER_BYTES:
                raise ModelError(
                    f"{source}: member {member} claims {size} bytes, more than any face "
                    f"landmarker model ({_MAX_MEMBER_BYTES >> 20} MB at most); refusing it"
                )
            try:
                members[name] = zf.read(member)
            except (zipfile.BadZipFile, zlib.error, EOFError, ValueError) as exc:
                raise ModelError(
                    f"{source}: member {member} is corrupt or truncated ({exc})"
                ) from None
    return members


def _check_member(source: Path, name: str, content: bytes, *, official: bool) -> None:
    member = TASK_MEMBERS[name]
    if name == _GEOMETRY:
        from facegraph.models.geometry_metadata import parse_geometry_metadata

        meta = parse_geometry_metadata(content, f"{source}: member {member}")
        if meta.num_vertices != _CANONICAL_VERTICES:
            raise ModelError(
                f"{source}: member {member}: the canonical mesh has {meta.num_vertices} "
                f"vertices; facegraph needs {_CANONICAL_VERTICES} (the face landmark ids)"
            )
        return
    if official:
        return  # the manifest's own bytes: shapes checked once, in the tests
    from facegraph.models.tflite_graph import TfLiteGraph

    graph = TfLiteGraph(content, f"{source}: member {member}")
    want_in, want_out = TENSOR_SHAPES[name]
    checks = (("input", graph.inputs, want_in), ("output", graph.outputs, want_out))
    for kind, indices, wanted in checks:
        if len(indices) != len(wanted):
            raise ModelError(
                f"{source}: member {member} has {len(indices)} {kind} tensor(s); "
                f"facegraph needs {len(wanted)} with shapes "
                + ", ".join(str(list(s)) for s in wanted)
            )
        for index, shape in zip(indices, wanted, strict=True):
            tensor = graph.tensors[index]
            if tuple(tensor.shape) != shape or tensor.dtype != np.float32:
                raise ModelError(
                    f"{source}: member {member}: {kind} tensor '{tensor.name}' is "
                    f"{tensor.dtype}{list(tensor.shape)}; facegraph needs float32{list(shape)}"
                )


def _store_official(source: Path, spec: ModelSpec, content: bytes, directory: Path) -> Path:
    from facegraph.models.store import check

    if check(spec, directory).ok:
        return directory / spec.file
    return _store(source, spec.member, content, directory / spec.file)


def _store(source: Path, member: str, content: bytes, target: Path) -> Path:
    """Write ``content`` to ``target`` atomically (unless it already holds those bytes)."""
    try:
        same_size = target.is_file() and target.stat().st_size == len(content)
        if same_size and target.read_bytes() == content:
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(content)
                out.flush()
                os.fsync(out.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ModelError(
            f"{source}: cannot store member {member} at {target}: {exc.strerror or exc}"
        ) from exc
    return target
