"""Stream positions and append acknowledgements (spec §3.1, §3.8)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StreamPosition:
    seq_num: int
    timestamp: int

    def to_json(self) -> dict[str, int]:
        return {"seq_num": self.seq_num, "timestamp": self.timestamp}


@dataclass(frozen=True, slots=True)
class AppendAck:
    start: StreamPosition
    end: StreamPosition
    tail: StreamPosition

    def to_json(self) -> dict[str, dict[str, int]]:
        return {
            "start": self.start.to_json(),
            "end": self.end.to_json(),
            "tail": self.tail.to_json(),
        }
