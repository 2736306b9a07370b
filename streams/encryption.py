"""The data plane's side of encryption (spec §7): the request's key for an opened stream,
and read results decrypted on their way out. The cryptography is ``storagecore.crypto``.

Plaintext streams take none of these steps: their stored records go to the wire as
they are.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from storagecore.config import Cipher
from storagecore.crypto import RecordCipher, associated_data, decode_key
from storagecore.reader import ReadBatch
from streams import sessions
from streams.directory import OpenStream


def record_cipher(stream: OpenStream, key: str | None) -> RecordCipher | None:
    """The cipher of this request, or None for a plaintext stream (whose key, if any, is
    ignored). Raises ``bad_header`` for a missing or malformed key."""
    if stream.cipher is None:
        return None
    cipher = Cipher(stream.cipher)
    return RecordCipher(
        cipher,
        decode_key(cipher, key),
        associated_data(stream.stream_id, stream.basin, stream.name),
    )


def open_batch(cipher: RecordCipher, batch: ReadBatch) -> ReadBatch:
    """The same records, decrypted; counts and metered sizes are those of the plaintext."""
    if not batch.count:
        return batch
    return ReadBatch(
        parts=[cipher.open_records(batch.payload)],
        count=batch.count,
        metered=batch.metered,
        next_seq=batch.next_seq,
        last_ts=batch.last_ts,
        limit_reached=batch.limit_reached,
    )


async def open_events(
    cipher: RecordCipher, events: AsyncIterator[sessions.SessionEvent]
) -> AsyncIterator[sessions.SessionEvent]:
    """A read session's events with their batches decrypted. A record that does not
    decrypt raises ``decryption_failed`` where the session's framing reports errors."""
    try:
        async for event in events:
            if isinstance(event, sessions.Batch):
                yield sessions.Batch(open_batch(cipher, event.records), event.tail)
            else:
                yield event
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:
            await close()  # the session stops following at once, even after a failure
