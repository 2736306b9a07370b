"""Encrypted streams end to end (spec §7) through the official Python SDK on the real server:
unary appends and reads, append sessions, following read sessions, key errors and a wrong
key (which ends a read session with ``decryption_failed``)."""

from __future__ import annotations

import asyncio
import base64
import os
from datetime import timedelta

import pytest
from s2_sdk import (
    S2,
    AppendInput,
    BasinConfig,
    Encryption,
    Endpoints,
    ReadLimit,
    Record,
    Retry,
    S2Basin,
    S2ServerError,
    SeqNum,
    Timeout,
)

pytestmark = pytest.mark.e2e

CIPHERS = pytest.mark.parametrize("cipher", list(Encryption), ids=[c.value for c in Encryption])


def client(url: str) -> S2:
    return S2(
        "ignored",
        endpoints=Endpoints(account=url, basin=url),
        timeout=Timeout(request=timedelta(seconds=30)),
        retry=Retry(max_attempts=1),
    )


async def encrypted_basin(s2: S2, name: str, cipher: Encryption) -> S2Basin:
    await s2.create_basin(name=name, config=BasinConfig(stream_cipher=cipher))
    return s2.basin(name)


@CIPHERS
def test_unary_and_session_round_trips(server_url: str, unique: str, cipher: Encryption) -> None:
    key = os.urandom(32)

    async def main() -> None:
        async with client(server_url) as s2:
            basin = await encrypted_basin(s2, f"sdk-enc-{unique}", cipher)
            info = await basin.create_stream("s")
            assert info.cipher == cipher
            stream = basin.stream("s", encryption_key=key)
            ack = await stream.append(
                AppendInput(records=[Record(body=b"one", headers=[(b"k", b"v")])])
            )
            assert (ack.start.seq_num, ack.end.seq_num) == (0, 1)
            async with stream.append_session() as session:
                tickets = [
                    await session.submit(AppendInput(records=[Record(body=bytes([n]) * 5000)]))
                    for n in range(3)
                ]
                acks = [await ticket for ticket in tickets]
            assert [a.end.seq_num for a in acks] == [2, 3, 4]
            # The same key as text (standard Base64) reads what the bytes key wrote.
            reader = basin.stream("s", encryption_key=base64.b64encode(key).decode())
            batch = await reader.read(start=SeqNum(0))
            assert [(r.seq_num, r.headers, r.body) for r in batch.records] == [
                (0, [(b"k", b"v")], b"one"),
                *[(n + 1, [], bytes([n]) * 5000) for n in range(3)],
            ]
            # A following read session gets sealed live records decrypted too.
            got: list[bytes] = []
            async with reader.read_session(start=SeqNum(3)) as session:
                async for read_batch in session:
                    got += [r.body for r in read_batch.records]
                    if len(got) == 1:
                        await stream.append(AppendInput(records=[Record(body=b"live")]))
                    if len(got) == 2:
                        break
            assert got == [bytes([2]) * 5000, b"live"]
            assert await stream.check_tail() == (await basin.stream("s").check_tail())

    asyncio.run(main())


@CIPHERS
def test_key_errors_and_wrong_keys(server_url: str, unique: str, cipher: Encryption) -> None:
    async def main() -> None:
        async with client(server_url) as s2:
            basin = await encrypted_basin(s2, f"sdk-enc-err-{unique}", cipher)
            await basin.create_stream("s")
            writer = basin.stream("s", encryption_key=os.urandom(32))
            await writer.append(AppendInput(records=[Record(body=b"secret")]))

            no_key = basin.stream("s")
            for call in (
                no_key.append(AppendInput(records=[Record(body=b"x")])),
                no_key.read(start=SeqNum(0)),
            ):
                with pytest.raises(S2ServerError) as caught:
                    await call
                assert (caught.value.status_code, caught.value.code) == (400, "bad_header")
                assert str(cipher.value) in str(caught.value)

            wrong = basin.stream("s", encryption_key=os.urandom(32))
            with pytest.raises(S2ServerError) as caught:
                await wrong.read(start=SeqNum(0))
            assert (caught.value.status_code, caught.value.code) == (400, "decryption_failed")
            with pytest.raises(S2ServerError) as caught:
                async with wrong.read_session(start=SeqNum(0), limit=ReadLimit(count=1)) as session:
                    async for _ in session:
                        pass
            assert caught.value.code == "decryption_failed"

    asyncio.run(main())
