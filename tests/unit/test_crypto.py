"""Record encryption (spec §7): primitives, the sealed layout, associated data, key
parsing, batch sealing, stored-record decryption and the AES-256-GCM sequence limit."""

from __future__ import annotations

import base64

import pytest

from storagecore import limits
from storagecore.config import Cipher
from storagecore.crypto import (
    AEGIS_256,
    AES_256_GCM,
    RecordCipher,
    associated_data,
    decode_key,
)
from storagecore.encoding import (
    decode_records,
    encode_envelope,
    encode_record,
    encode_sealed_record,
    split_records,
)
from storagecore.errors import BadHeader, DecryptionFailed, ErrorCode, Invalid, StorageFailure
from storagecore.records import AppendBatch, Command, fence_record, parse_record, trim_record
from storagecore.sequencer import TimestampPolicy, WriterState, sequence

KEY = bytes(range(1, 33))
OTHER_KEY = bytes(32)
AD = associated_data(42, "golden-basin", "orders/eu")
CIPHERS = pytest.mark.parametrize("cipher", list(Cipher), ids=[c.value for c in Cipher])

# The golden record: a header and a body, sealed with a pinned nonce for stream 42,
# `orders/eu` in `golden-basin`. If these bytes stop decrypting, stored data is lost.
GOLDEN_PLAINTEXT = (
    "1a1a0a0c636f6e74656e742d74797065120a746578742f706c61696e"
    "221368656c6c6f2c207365616c656420776f726c64"
)
GOLDEN = {
    Cipher.AEGIS_256: (
        "01"
        "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
        "b5dd83f09c56e1889142a85cd8836ef585830bea80dcc0bbc2bfd89175fdeb75"
        "80163e14c437c5ed68eab0b0564e4e3a6099ef1d356e4a8a52f9b17e95a77a4f"
        "775a8a32d4fb5fe6fb40da03e4d0e58eac"
    ),
    Cipher.AES_256_GCM: (
        "02"
        "b0b1b2b3b4b5b6b7b8b9babb"
        "9ad925d8ff849ceb62c4c7fd53c5836b13180d49a7c41f97fb5e03c2e9900ab1"
        "93a994506147422a61abaa30e37ee52213faf61348ad477de12d6a75d1179b17"
        "2f"
    ),
}
GOLDEN_NONCE = {
    Cipher.AEGIS_256: bytes(range(0xA0, 0xC0)),
    Cipher.AES_256_GCM: bytes(range(0xB0, 0xBC)),
}


def cipher_of(cipher: Cipher, key: bytes = KEY, ad: bytes = AD) -> RecordCipher:
    return RecordCipher(cipher, key, ad)


# Primitives: published test vectors, so the libraries are checked independently of us.


def test_aegis_256_matches_the_published_test_vector() -> None:
    # AEGIS-256 test vector 1 (draft-irtf-cfrg-aegis-aead): 16 zero bytes, no AD,
    # 256-bit tag (libsodium's tag length).
    key = bytes.fromhex("10010000000000000000000000000000" + "00" * 16)
    nonce = bytes.fromhex("10000200000000000000000000000000" + "00" * 16)
    sealed = RecordCipher(Cipher.AEGIS_256, key, b"").seal(bytes(16), nonce)
    assert sealed[0] == 0x01 and sealed[1:33] == nonce
    assert sealed[33:49].hex() == "754fc3d8c973246dcc6d741412a4b236"
    assert sealed[49:].hex() == "1181a1d18091082bf0266f66297d167d2e68b845f61a3b0527d31fc7b7b89f13"


def test_aes_256_gcm_matches_the_nist_test_vectors() -> None:
    # GCM specification test cases 13 and 14: zero key, zero 96-bit IV.
    gcm = RecordCipher(Cipher.AES_256_GCM, bytes(32), b"")
    assert gcm.seal(b"", bytes(12))[13:].hex() == "530f8afbc74536b9a963b4f1c4cb738b"
    sealed = gcm.seal(bytes(16), bytes(12))
    assert sealed[13:29].hex() == "cea7403d4d606b6e074ec5d3baf39d18"
    assert sealed[29:].hex() == "d0d1c8a799996bf0265b98b5d48ab919"


# The sealed layout and the golden records.


def test_associated_data_layout() -> None:
    layout = b"S2REC\x01" + (42).to_bytes(8, "big") + b"golden-basin\x00orders/eu"
    assert associated_data(42, "golden-basin", "orders/eu") == layout


@CIPHERS
def test_golden_ciphertext_decrypts_to_the_fixed_plaintext(cipher: Cipher) -> None:
    sealed = bytes.fromhex(GOLDEN[cipher])
    plaintext = cipher_of(cipher).open(sealed)
    assert plaintext.hex() == GOLDEN_PLAINTEXT
    assert plaintext == encode_envelope([(b"content-type", b"text/plain")], b"hello, sealed world")
    # And the layout is reproduced exactly from the same inputs.
    assert cipher_of(cipher).seal(plaintext, GOLDEN_NONCE[cipher]) == sealed


@CIPHERS
def test_sealed_layout(cipher: Cipher) -> None:
    algorithm = {Cipher.AEGIS_256: AEGIS_256, Cipher.AES_256_GCM: AES_256_GCM}[cipher]
    plaintext = b"x" * 100
    sealed = cipher_of(cipher).seal(plaintext)
    assert sealed[0] == algorithm.format_id
    assert len(sealed) == 1 + algorithm.nonce_bytes + len(plaintext) + algorithm.tag_bytes
    assert plaintext not in sealed
    assert (algorithm.nonce_bytes, algorithm.tag_bytes) == (
        (32, 32) if cipher is Cipher.AEGIS_256 else (12, 16)
    )


@CIPHERS
def test_nonces_are_random(cipher: Cipher) -> None:
    sealer = cipher_of(cipher)
    sealed = {sealer.seal(b"same") for _ in range(50)}
    assert len(sealed) == 50
    assert all(sealer.open(s) == b"same" for s in sealed)


@CIPHERS
@pytest.mark.parametrize(
    "ad",
    [
        associated_data(43, "golden-basin", "orders/eu"),  # same name, another stream
        associated_data(42, "golden-basin", "orders/us"),
        associated_data(42, "other-basin1", "orders/eu"),
        associated_data(42, "golden-basin", "orders/eu/"),
        b"",
    ],
)
def test_a_record_moved_to_another_stream_does_not_decrypt(cipher: Cipher, ad: bytes) -> None:
    sealed = bytes.fromhex(GOLDEN[cipher])
    with pytest.raises(DecryptionFailed) as raised:
        cipher_of(cipher, ad=ad).open(sealed)
    assert raised.value.code is ErrorCode.DECRYPTION_FAILED
    assert raised.value.status == 400
    assert raised.value.message == "record decryption failed"


@CIPHERS
def test_wrong_key_and_tampering_fail_authentication(cipher: Cipher) -> None:
    sealed = bytes.fromhex(GOLDEN[cipher])
    with pytest.raises(DecryptionFailed):
        cipher_of(cipher, key=OTHER_KEY).open(sealed)
    for position in (1, len(sealed) // 2, len(sealed) - 1):  # nonce, ciphertext, tag
        tampered = bytearray(sealed)
        tampered[position] ^= 0x01
        with pytest.raises(DecryptionFailed):
            cipher_of(cipher).open(bytes(tampered))


@CIPHERS
def test_malformed_sealed_envelopes_are_storage_failures(cipher: Cipher) -> None:
    sealed = bytes.fromhex(GOLDEN[cipher])
    other_id = 0x02 if cipher is Cipher.AEGIS_256 else 0x01
    cases = {
        b"": "malformed encrypted record",
        b"\xff" + sealed[1:]: "invalid encrypted record format id",
        bytes((other_id,)) + sealed[1:]: "record encryption algorithm mismatch",
        sealed[:20]: "malformed encrypted record",
    }
    for data, message in cases.items():
        with pytest.raises(StorageFailure) as raised:
            cipher_of(cipher).open(data)
        assert raised.value.message == message
        assert raised.value.status == 500


# The key header (the value arrives trimmed and 1-44 characters long).

KEY_B64 = base64.b64encode(KEY).decode()


@CIPHERS
def test_a_valid_key_decodes(cipher: Cipher) -> None:
    assert decode_key(cipher, KEY_B64) == KEY


@CIPHERS
def test_a_missing_key(cipher: Cipher) -> None:
    with pytest.raises(BadHeader) as raised:
        decode_key(cipher, None)
    assert raised.value.message == f"missing encryption key for stream cipher '{cipher.value}'"
    assert raised.value.status == 400


@CIPHERS
@pytest.mark.parametrize(
    "value",
    [
        "!!!!",
        "AAA",  # unpadded
        "AAAA====",  # excess padding
        "AB==",  # non-canonical trailing bits
        "AAAA AAAA",
        "é" * 4,
        KEY_B64.rstrip("="),
        base64.urlsafe_b64encode(b"\xfb\xff" * 16).decode(),  # URL-safe alphabet
    ],
)
def test_invalid_base64(cipher: Cipher, value: str) -> None:
    with pytest.raises(BadHeader) as raised:
        decode_key(cipher, value)
    assert raised.value.message == (
        f"invalid encryption key for stream cipher '{cipher.value}': invalid base64"
    )


@CIPHERS
@pytest.mark.parametrize("length", [1, 4, 31, 33])
def test_wrong_key_length(cipher: Cipher, length: int) -> None:
    value = base64.b64encode(b"\x42" * length).decode()
    with pytest.raises(BadHeader) as raised:
        decode_key(cipher, value)
    assert raised.value.message == (
        f"invalid encryption key length for stream cipher '{cipher.value}': {length}"
    )


# Batches and stored records.


def _batch() -> AppendBatch:
    return AppendBatch.build(
        [
            parse_record(7, [(b"k", b"v"), (b"k2", b"")], b"first"),
            fence_record("token-1"),
            parse_record(None, [], b""),
            trim_record(0),
            parse_record(None, [], b"last" * 100),
        ],
        None,
        None,
    )


@CIPHERS
def test_sealing_a_batch_keeps_commands_and_metering(cipher: Cipher) -> None:
    batch = _batch()
    sealed = cipher_of(cipher).seal_batch(batch)
    assert sealed.metered_bytes == batch.metered_bytes
    assert [r.metered_bytes for r in sealed.records] == [r.metered_bytes for r in batch.records]
    assert [r.timestamp for r in sealed.records] == [r.timestamp for r in batch.records]
    for before, after in zip(batch.records, sealed.records, strict=True):
        if before.command is not None:
            assert after is before
            assert after.sealed is None
        else:
            assert after.sealed is not None and after.headers == () and after.body == b""
            expected_max = limits.u64_max if cipher is Cipher.AEGIS_256 else 2**32 - 1
            assert after.seq_num_max == expected_max
    nonces = {r.sealed[1:13] for r in sealed.records if r.sealed is not None}
    assert len(nonces) == 3


@CIPHERS
def test_stored_records_decrypt_to_the_plaintext_wire_records(cipher: Cipher) -> None:
    sealer = cipher_of(cipher)
    batch = _batch()
    plain_run = sequence(WriterState(next_seq=5), batch, TimestampPolicy(), 1000)
    sealed_run = sequence(
        WriterState(next_seq=5), sealer.seal_batch(batch), TimestampPolicy(), 1000
    )
    assert sealed_run.payload != plain_run.payload
    assert b"first" not in sealed_run.payload and b"last" not in sealed_run.payload
    assert b"token-1" in sealed_run.payload  # commands are stored in plaintext
    assert list(sealed_run.metered) == list(plain_run.metered)
    assert list(sealed_run.timestamps) == list(plain_run.timestamps)
    # Decrypting gives exactly the bytes a plaintext stream stores and sends.
    assert sealer.open_records(sealed_run.payload) == plain_run.payload
    assert sealer.open_records(memoryview(sealed_run.payload)) == plain_run.payload
    with pytest.raises(DecryptionFailed):
        cipher_of(cipher, key=OTHER_KEY).open_records(sealed_run.payload)


@CIPHERS
def test_commands_decrypt_with_any_key(cipher: Cipher) -> None:
    batch = AppendBatch.build([fence_record("f"), trim_record(1)], None, None)
    run = sequence(WriterState(), cipher_of(cipher).seal_batch(batch), TimestampPolicy(), 1000)
    assert cipher_of(cipher, key=OTHER_KEY).open_records(run.payload) == run.payload


@CIPHERS
def test_a_plaintext_envelope_in_an_encrypted_stream_is_a_storage_failure(cipher: Cipher) -> None:
    stored = encode_record(3, 4, [], b"not sealed")
    with pytest.raises(StorageFailure) as raised:
        cipher_of(cipher).open_records(stored)
    assert raised.value.message == "record encryption algorithm mismatch"
    with pytest.raises(StorageFailure):
        cipher_of(cipher).open_records(b"\x0a\x05\x08")  # truncated


def test_stored_sealed_record_layout() -> None:
    stored = encode_sealed_record(300, 2, b"\x01sealed")
    # 0x0a len | 0x08 varint(300) | 0x10 2 | 0x2a len sealed
    assert stored == b"\x0a\x0e\x08\xac\x02\x10\x02\x2a\x07\x01sealed"
    [(frame, position, sealed)] = list(split_records(stored + b""))
    assert bytes(frame) == stored
    assert bytes(position) == b"\x08\xac\x02\x10\x02"
    assert sealed is not None and bytes(sealed) == b"\x01sealed"
    # Position fields are optional (zero values are left out).
    [(_, position, sealed)] = list(split_records(encode_sealed_record(0, 0, b"\x02x")))
    assert bytes(position) == b"" and sealed is not None and bytes(sealed) == b"\x02x"
    [(_, _, sealed)] = list(split_records(encode_record(1, 1, [], b"body")))
    assert sealed is None


# The AES-256-GCM sequence number limit (enforced by the sequencer).


def _sealed_batch(cipher: Cipher, count: int) -> AppendBatch:
    records = [parse_record(None, [], b"r") for _ in range(count)]
    return cipher_of(cipher).seal_batch(AppendBatch.build(records, None, None))


def test_aes_gcm_records_stop_at_u32_max() -> None:
    last = 2**32 - 1
    run = sequence(
        WriterState(next_seq=last - 1), _sealed_batch(Cipher.AES_256_GCM, 2), TimestampPolicy(), 5
    )
    assert (run.start.seq_num, run.end.seq_num) == (last - 1, last + 1)
    state = WriterState(next_seq=last - 1, last_ts=3)
    with pytest.raises(Invalid) as raised:
        sequence(state, _sealed_batch(Cipher.AES_256_GCM, 3), TimestampPolicy(), 5)
    assert raised.value.message == (
        f"max assignable sequence number is {last}; attempted {last + 1}"
    )
    assert raised.value.status == 422
    with pytest.raises(Invalid):
        sequence(
            WriterState(next_seq=last + 1),
            _sealed_batch(Cipher.AES_256_GCM, 1),
            TimestampPolicy(),
            5,
        )


def test_commands_and_aegis_records_are_exempt_from_the_limit() -> None:
    beyond = WriterState(next_seq=2**32 + 10)
    commands = cipher_of(Cipher.AES_256_GCM).seal_batch(
        AppendBatch.build([fence_record("x"), trim_record(0)], None, None)
    )
    run = sequence(beyond, commands, TimestampPolicy(), 5)
    assert run.end.seq_num == 2**32 + 12
    assert run.state.fencing_token == "x"
    assert [r.command for r in commands.records] == [Command.FENCE, Command.TRIM]
    far = WriterState(next_seq=2**60)
    assert sequence(far, _sealed_batch(Cipher.AEGIS_256, 3), TimestampPolicy(), 5).end.seq_num == (
        2**60 + 3
    )


def test_decoded_plaintext_round_trip() -> None:
    sealer = cipher_of(Cipher.AEGIS_256)
    stored = encode_sealed_record(9, 10, sealer.seal(encode_envelope([(b"a", b"b")], b"c")))
    assert list(decode_records(sealer.open_records(stored))) == [(9, 10, [(b"a", b"b")], b"c")]
