"""Sans-IO wire formats of the record API: protobuf messages, JSON records, S2S frames, SSE."""
