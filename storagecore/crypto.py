"""Customer-supplied-key encryption of records (spec §7).

A stream created in a basin with a ``stream_cipher`` keeps that cipher for life.
Every append and read of it carries the key in ``s2-encryption-key`` (standard,
padded Base64 of 32 bytes); the server uses it for that request and never stores
it. Envelope records are sealed one by one with a fresh random nonce; command
records stay in plaintext. Metering and limits apply to the plaintext record.

The primitives come from maintained libraries, nothing is hand-written:
AEGIS-256 is libsodium's ``crypto_aead_aegis256`` (through PyNaCl, 256-bit tag),
AES-256-GCM is OpenSSL's through ``cryptography`` (128-bit tag).

Sealed envelope, layout version 1 (the field ``0x2a`` of a stored record, see
``storagecore.encoding``)::

    0   1  format id: 0x01 AEGIS-256 v1, 0x02 AES-256-GCM v1
    1   n  nonce, random: 32 bytes (AEGIS-256) or 12 bytes (AES-256-GCM)
    ..  m  ciphertext of the record's headers and body (``encoding.encode_envelope``)
    ..  t  tag: 32 bytes (AEGIS-256) or 16 bytes (AES-256-GCM)

The format id versions the whole layout: a future layout takes a new id.

Associated data (authenticated, not stored) binds a sealed envelope to one stream::

    b"S2REC\\x01" | stream id (u64, big-endian) | basin name | 0x00 | stream name

Basin names cannot contain 0x00, so the encoding is unambiguous. The stream id is
the catalog's id of this incarnation of the stream, so a record copied into any
other stream -- including a later stream of the same name -- does not decrypt.
The record's position is not bound: it is stored beside the sealed envelope.

AES-256-GCM with random 96-bit nonces is safe for a bounded number of messages per
key, so such streams may not assign sequence numbers above 2^32 - 1 to sealed
records (the sequencer enforces ``Record.seq_num_max``); commands are exempt.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from storagecore import limits
from storagecore.config import Cipher
from storagecore.encoding import (
    DecodeError,
    decode_records,
    encode_envelope,
    frame_record,
    split_records,
)
from storagecore.errors import BadHeader, DecryptionFailed, StorageFailure
from storagecore.records import AppendBatch, Record

LAYOUT_VERSION = 1
ASSOCIATED_DATA_PREFIX = b"S2REC\x01"

# (nonce, plaintext, associated data) -> ciphertext and tag
_Seal = Callable[[bytes, bytes, bytes], bytes]
# (nonce, ciphertext and tag, associated data) -> plaintext; raises on a bad tag
_Open = Callable[[bytes, bytes, bytes], bytes]


@dataclass(frozen=True, slots=True)
class Algorithm:
    cipher: Cipher
    format_id: int
    nonce_bytes: int
    tag_bytes: int
    seq_num_max: int


AEGIS_256 = Algorithm(Cipher.AEGIS_256, 0x01, 32, 32, limits.u64_max)
AES_256_GCM = Algorithm(Cipher.AES_256_GCM, 0x02, 12, 16, limits.aes_gcm_seq_num_max)
ALGORITHMS = {algorithm.cipher: algorithm for algorithm in (AEGIS_256, AES_256_GCM)}
_BY_FORMAT_ID = {algorithm.format_id: algorithm for algorithm in ALGORITHMS.values()}


def decode_key(cipher: Cipher, value: str | None) -> bytes:
    """The 32-byte key of a request to a stream with ``cipher``, from the already trimmed
    header value; the error messages are the reference server's."""
    if value is None:
        raise BadHeader(f"missing encryption key for stream cipher '{cipher}'")
    try:
        encoded = value.encode("ascii")
        key = base64.b64decode(encoded, validate=True)
    except (UnicodeEncodeError, binascii.Error):
        key = None
    # Only canonical Base64 is accepted: re-encoding must give the same text.
    if key is None or base64.b64encode(key) != encoded:
        raise BadHeader(f"invalid encryption key for stream cipher '{cipher}': invalid base64")
    if len(key) != limits.encryption_key_bytes:
        raise BadHeader(f"invalid encryption key length for stream cipher '{cipher}': {len(key)}")
    return key


def associated_data(stream_id: int, basin: str, stream: str) -> bytes:
    return b"".join(
        (
            ASSOCIATED_DATA_PREFIX,
            stream_id.to_bytes(8, "big"),
            basin.encode(),
            b"\x00",
            stream.encode(),
        )
    )


class RecordCipher:
    """One request's view of an encrypted stream: its algorithm, the key and the
    stream's associated data."""

    def __init__(self, cipher: Cipher, key: bytes, associated_data: bytes) -> None:
        if len(key) != limits.encryption_key_bytes:
            raise ValueError("the key must be 32 bytes")
        self.algorithm = ALGORITHMS[cipher]
        self.associated_data = associated_data
        self._seal, self._open = _primitives(cipher, key)

    def seal(self, plaintext: bytes, nonce: bytes | None = None) -> bytes:
        """A sealed envelope; the nonce is random unless given (tests pin it)."""
        algorithm = self.algorithm
        if nonce is None:
            nonce = os.urandom(algorithm.nonce_bytes)
        if len(nonce) != algorithm.nonce_bytes:
            raise ValueError("wrong nonce length")
        body = self._seal(nonce, plaintext, self.associated_data)
        return b"".join((bytes((algorithm.format_id,)), nonce, body))

    def open(self, sealed: bytes | memoryview) -> bytes:
        """The plaintext of a sealed envelope; ``DecryptionFailed`` if it does not
        authenticate under this key and stream."""
        if not sealed:
            raise StorageFailure("malformed encrypted record")
        algorithm = _BY_FORMAT_ID.get(sealed[0])
        if algorithm is None:
            raise StorageFailure("invalid encrypted record format id")
        if algorithm is not self.algorithm:
            raise StorageFailure("record encryption algorithm mismatch")
        body_start = 1 + algorithm.nonce_bytes
        if len(sealed) < body_start + algorithm.tag_bytes:
            raise StorageFailure("malformed encrypted record")
        nonce = bytes(sealed[1:body_start])
        try:
            return self._open(nonce, bytes(sealed[body_start:]), self.associated_data)
        except (InvalidTag, nacl.exceptions.CryptoError):
            raise DecryptionFailed() from None

    def seal_batch(self, batch: AppendBatch) -> AppendBatch:
        """The batch with every envelope record sealed; commands and metering unchanged."""
        algorithm = self.algorithm
        size = algorithm.nonce_bytes
        nonces = os.urandom(size * len(batch.records))  # one draw for the batch
        records: list[Record] = []
        for i, record in enumerate(batch.records):
            if record.command is not None:
                records.append(record)
                continue
            plaintext = encode_envelope(record.headers, record.body)
            records.append(
                Record(
                    record.timestamp,
                    (),
                    b"",
                    record.metered_bytes,
                    sealed=self.seal(plaintext, nonces[i * size : (i + 1) * size]),
                    seq_num_max=algorithm.seq_num_max,
                )
            )
        return AppendBatch(records, batch.match_seq_num, batch.fencing_token, batch.metered_bytes)

    def open_records(self, payload: bytes | memoryview) -> bytes:
        """Stored records of this stream (``storagecore.encoding``) as wire records."""
        out: list[bytes] = []
        try:
            for frame, position, sealed in split_records(payload):
                if sealed is not None:
                    out.append(frame_record(position, self.open(sealed)))
                elif _is_command(frame):
                    out.append(frame)
                else:
                    raise StorageFailure("record encryption algorithm mismatch")
        except DecodeError as exc:
            raise StorageFailure(f"malformed stored record: {exc}") from None
        return b"".join(out)


def _is_command(frame: bytes) -> bool:
    for _, _, headers, _ in decode_records(frame):
        return len(headers) == 1 and headers[0][0] == b""
    return False


def _primitives(cipher: Cipher, key: bytes) -> tuple[_Seal, _Open]:
    if cipher is Cipher.AEGIS_256:

        def seal_aegis(nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
            return nacl.bindings.crypto_aead_aegis256_encrypt(plaintext, ad, nonce, key)

        def open_aegis(nonce: bytes, body: bytes, ad: bytes) -> bytes:
            return nacl.bindings.crypto_aead_aegis256_decrypt(body, ad, nonce, key)

        return seal_aegis, open_aegis
    aead = AESGCM(key)

    def seal_gcm(nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
        return aead.encrypt(nonce, plaintext, ad)

    def open_gcm(nonce: bytes, body: bytes, ad: bytes) -> bytes:
        return aead.decrypt(nonce, body, ad)

    return seal_gcm, open_gcm
