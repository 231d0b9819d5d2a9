"""Device wire formats: one module per sensor type, and the registry of them.

``PROTOCOLS`` maps a device type name to its :class:`DeviceProtocol`
(service/characteristic UUIDs, advertised-name patterns, capabilities, start
commands live in the module, and a decoder factory). ``detect`` finds the
type of an advertising device.
"""

from __future__ import annotations

from collections.abc import Sequence

from collector.protocols import metamotion, movesense, witmotion
from collector.protocols.base import (
    Decoded,
    DecoderStats,
    DeviceProtocol,
    DeviceTimestamps,
    Message,
    StreamDecoder,
)

#: Device type name -> protocol. Adding a sensor type = one module + one line here.
PROTOCOLS: dict[str, DeviceProtocol] = {
    p.kind: p for p in (witmotion.PROTOCOL, movesense.PROTOCOL, metamotion.PROTOCOL)
}


def get_protocol(kind: str) -> DeviceProtocol:
    """The protocol of a device type name; a clear error names the known ones."""
    try:
        return PROTOCOLS[kind]
    except KeyError as exc:
        known = ", ".join(sorted(PROTOCOLS))
        raise ValueError(f"unknown sensor type {kind!r}; known types: {known}") from exc


def detect(name: str | None, service_uuids: Sequence[str] = ()) -> DeviceProtocol | None:
    """The protocol whose advertisement (service UUIDs first, then name) matches, or None."""
    lowered = [u.lower() for u in service_uuids]
    for proto in PROTOCOLS.values():
        if any(u in lowered for u in proto.advertised_service_uuids):
            return proto
    for proto in PROTOCOLS.values():
        if proto.matches(name, ()):
            return proto
    return None


__all__ = [
    "PROTOCOLS",
    "Decoded",
    "DecoderStats",
    "DeviceProtocol",
    "DeviceTimestamps",
    "Message",
    "StreamDecoder",
    "detect",
    "get_protocol",
    "metamotion",
    "movesense",
    "witmotion",
]
