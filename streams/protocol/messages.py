"""The ``s2.v1`` protobuf messages (spec §3.3), built from a descriptor at import time.

The message definitions are those of the public ``s2.proto``; building them here
rather than generating code keeps the module independent of the protoc version.
Parsing and serialising run in the protobuf library's C implementation.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _field(
    name: str,
    number: int,
    kind: int,
    *,
    repeated: bool = False,
    message: str | None = None,
    optional: bool = False,
) -> dict[str, Any]:
    return {
        "name": name,
        "number": number,
        "type": kind,
        "label": _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL,
        "type_name": f".s2.v1.{message}" if message else None,
        "proto3_optional": optional,
    }


_MESSAGES: dict[str, list[dict[str, Any]]] = {
    "StreamPosition": [
        _field("seq_num", 1, _F.TYPE_UINT64),
        _field("timestamp", 2, _F.TYPE_UINT64),
    ],
    "Header": [_field("name", 1, _F.TYPE_BYTES), _field("value", 2, _F.TYPE_BYTES)],
    "AppendRecord": [
        _field("timestamp", 1, _F.TYPE_UINT64, optional=True),
        _field("headers", 2, _F.TYPE_MESSAGE, repeated=True, message="Header"),
        _field("body", 3, _F.TYPE_BYTES),
    ],
    "AppendInput": [
        _field("records", 1, _F.TYPE_MESSAGE, repeated=True, message="AppendRecord"),
        _field("match_seq_num", 2, _F.TYPE_UINT64, optional=True),
        _field("fencing_token", 3, _F.TYPE_STRING, optional=True),
    ],
    "AppendAck": [
        _field("start", 1, _F.TYPE_MESSAGE, message="StreamPosition"),
        _field("end", 2, _F.TYPE_MESSAGE, message="StreamPosition"),
        _field("tail", 3, _F.TYPE_MESSAGE, message="StreamPosition"),
    ],
    "SequencedRecord": [
        _field("seq_num", 1, _F.TYPE_UINT64),
        _field("timestamp", 2, _F.TYPE_UINT64),
        _field("headers", 3, _F.TYPE_MESSAGE, repeated=True, message="Header"),
        _field("body", 4, _F.TYPE_BYTES),
    ],
    "ReadBatch": [
        _field("records", 1, _F.TYPE_MESSAGE, repeated=True, message="SequencedRecord"),
        _field("tail", 2, _F.TYPE_MESSAGE, optional=True, message="StreamPosition"),
    ],
}


def _build() -> dict[str, Any]:
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="s2/v1/s2.proto", package="s2.v1", syntax="proto3"
    )
    for message_name, fields in _MESSAGES.items():
        message = file_proto.message_type.add(name=message_name)
        for spec in fields:
            field = message.field.add(
                name=spec["name"], number=spec["number"], type=spec["type"], label=spec["label"]
            )
            if spec["type_name"]:
                field.type_name = spec["type_name"]
            if spec["proto3_optional"]:
                # proto3 `optional` is a synthetic one-field oneof.
                field.proto3_optional = True
                field.oneof_index = len(message.oneof_decl)
                message.oneof_decl.add(name=f"_{spec['name']}")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"s2.v1.{name}"))
        for name in _MESSAGES
    }


_CLASSES = _build()
StreamPosition: Any = _CLASSES["StreamPosition"]
Header: Any = _CLASSES["Header"]
AppendRecord: Any = _CLASSES["AppendRecord"]
AppendInput: Any = _CLASSES["AppendInput"]
AppendAck: Any = _CLASSES["AppendAck"]
SequencedRecord: Any = _CLASSES["SequencedRecord"]
ReadBatch: Any = _CLASSES["ReadBatch"]
