"""Reading MediaPipe's face geometry metadata (``geometry_pipeline_metadata_landmarks.binarypb``).

The file is one serialized ``GeometryPipelineMetadata`` protobuf message (proto2, from
``mediapipe/tasks/cc/vision/face_geometry/proto/``)::

    GeometryPipelineMetadata { input_source = 3 (enum);
                               canonical_mesh = 1 (Mesh3d);
                               repeated procrustes_landmark_basis = 2 (WeightedLandmarkRef) }
    Mesh3d                   { vertex_type = 1; primitive_type = 2;
                               repeated float vertex_buffer = 3;     # x y z u v per vertex
                               repeated uint32 index_buffer = 4 }    # 3 per triangle
    WeightedLandmarkRef      { uint32 landmark_id = 1; float weight = 2 }

Why a reader of our own rather than the ``protobuf`` package: the package would also need
the ``.proto`` files compiled into Python classes (generated code we would then carry), for
one fixed message of three small types. The protobuf wire format needed here (varints,
32-bit floats, length-delimited fields, packed or unpacked repeated fields) is ~60 lines,
and every malformed byte gets an error naming the file and the byte offset.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from facegraph.models.errors import ModelError

__all__ = ["GeometryMetadata", "parse_geometry_metadata", "read_geometry_metadata"]

#: ``Mesh3d.VertexType.VERTEX_PT``: position (x, y, z) then texture coordinate (u, v).
VERTEX_PT = 0
_VERTEX_SIZE = {VERTEX_PT: 5}
#: ``Mesh3d.PrimitiveType.TRIANGLE``.
TRIANGLE = 0
#: ``InputSource``: DEFAULT (0) means FACE_LANDMARK_PIPELINE (1).
FACE_LANDMARK_PIPELINE = 1
FACE_DETECTION_PIPELINE = 2


@dataclass(frozen=True, slots=True)
class GeometryMetadata:
    """The canonical face mesh and the Procrustes landmark weights."""

    canonical_vertices: np.ndarray
    """float32 (N, 3): the canonical face in centimetres, right-handed (N = 468)."""
    texture_coords: np.ndarray
    """float32 (N, 2): each vertex's (u, v)."""
    triangles: np.ndarray
    """int32 (M, 3): vertex ids of each triangle."""
    weights: np.ndarray
    """float32 (N,): the Procrustes weight of each landmark (0 for landmarks not in the basis)."""
    input_source: int
    """:data:`FACE_LANDMARK_PIPELINE` or :data:`FACE_DETECTION_PIPELINE`."""

    @property
    def num_vertices(self) -> int:
        return int(self.canonical_vertices.shape[0])


class _WireError(ValueError):
    pass


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise _WireError(f"varint runs past the end at byte {pos}")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise _WireError(f"varint longer than 10 bytes at byte {pos}")


def _fields(data: bytes, base: int = 0) -> Iterator[tuple[int, int, int | bytes, int]]:
    """(field number, wire type, value, absolute offset) for each field of one message."""
    pos = 0
    while pos < len(data):
        start = pos
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise _WireError(f"field number 0 at byte {base + start}")
        value: int | bytes
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise _WireError(f"unsupported wire type {wire} at byte {base + start}")
        if pos > len(data):
            raise _WireError(f"field {number} at byte {base + start} runs past the end")
        yield number, wire, value, base + start


def _floats(wire: int, value: int | bytes, at: int) -> list[float]:
    if wire == 5:  # one unpacked float
        assert isinstance(value, bytes)
        return [struct.unpack("<f", value)[0]]
    if wire == 2 and isinstance(value, bytes) and len(value) % 4 == 0:  # packed
        return list(struct.unpack(f"<{len(value) // 4}f", value))
    raise _WireError(f"expected float(s) at byte {at}")


def _uints(wire: int, value: int | bytes, at: int) -> list[int]:
    if wire == 0:
        assert isinstance(value, int)
        return [value]
    if wire == 2 and isinstance(value, bytes):  # packed varints
        out: list[int] = []
        pos = 0
        while pos < len(value):
            v, pos = _varint(value, pos)
            out.append(v)
        return out
    raise _WireError(f"expected unsigned integer(s) at byte {at}")


def parse_geometry_metadata(data: bytes, source: str = "<bytes>") -> GeometryMetadata:
    """Decode a serialized ``GeometryPipelineMetadata``; :class:`ModelError` names ``source``."""
    try:
        return _parse(data)
    except _WireError as exc:
        raise ModelError(
            f"{source}: not a face geometry metadata message (protobuf): {exc}"
        ) from None


def read_geometry_metadata(path: str | os.PathLike[str]) -> GeometryMetadata:
    """:func:`parse_geometry_metadata` of the file at ``path``."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read face geometry metadata {path}: {exc}") from exc
    return parse_geometry_metadata(data, str(path))


def _parse(data: bytes) -> GeometryMetadata:
    input_source = 0
    mesh: bytes | None = None
    basis: list[tuple[int, float]] = []
    for number, wire, value, at in _fields(data):
        if number == 3 and wire == 0:
            assert isinstance(value, int)
            input_source = value
        elif number == 1 and wire == 2:
            assert isinstance(value, bytes)
            mesh = value
        elif number == 2 and wire == 2:
            assert isinstance(value, bytes)
            landmark, weight = 0, 0.0
            for n, w, v, a in _fields(value, at):
                if n == 1:
                    landmark = _uints(w, v, a)[-1]
                elif n == 2:
                    weight = _floats(w, v, a)[-1]
            basis.append((landmark, weight))
    if mesh is None:
        raise _WireError("it has no canonical_mesh (field 1)")
    vertex_type = primitive_type = 0
    vertices: list[float] = []
    indices: list[int] = []
    for number, wire, value, at in _fields(mesh):
        if number == 1:
            vertex_type = _uints(wire, value, at)[-1]
        elif number == 2:
            primitive_type = _uints(wire, value, at)[-1]
        elif number == 3:
            vertices += _floats(wire, value, at)
        elif number == 4:
            indices += _uints(wire, value, at)
    if vertex_type not in _VERTEX_SIZE:
        raise _WireError(f"unknown canonical_mesh vertex_type {vertex_type}")
    if primitive_type != TRIANGLE:
        raise _WireError(f"unknown canonical_mesh primitive_type {primitive_type}")
    size = _VERTEX_SIZE[vertex_type]
    if not vertices or len(vertices) % size:
        raise _WireError(f"vertex_buffer holds {len(vertices)} floats, not a multiple of {size}")
    if len(indices) % 3:
        raise _WireError(f"index_buffer holds {len(indices)} ids, not a multiple of 3")
    buffer = np.asarray(vertices, np.float32).reshape(-1, size)
    n = buffer.shape[0]
    triangles = np.asarray(indices, np.int64).reshape(-1, 3)
    if triangles.size and triangles.max() >= n:
        raise _WireError(f"index_buffer refers to vertex {triangles.max()} of {n}")
    weights = np.zeros(n, np.float32)
    for landmark, weight in basis:
        if landmark >= n:
            raise _WireError(f"procrustes_landmark_basis names landmark {landmark} of {n}")
        if not weight >= 0.0:
            raise _WireError(f"landmark {landmark} has a negative weight {weight}")
        weights[landmark] = weight
    if weights.sum() <= 1e-9:
        raise _WireError("procrustes_landmark_basis has no positive weight")
    if input_source == 0:
        input_source = FACE_LANDMARK_PIPELINE
    if input_source not in (FACE_LANDMARK_PIPELINE, FACE_DETECTION_PIPELINE):
        raise _WireError(f"unknown input_source {input_source}")
    vertices_xyz, uv = buffer[:, :3].copy(), buffer[:, 3:5].copy()
    ids = triangles.astype(np.int32)
    for array in (vertices_xyz, uv, ids, weights):
        array.flags.writeable = False
    return GeometryMetadata(vertices_xyz, uv, ids, weights, input_source)
