"""The ``s2bench`` command line, shared by ``manage.py s2bench`` and ``python -m s2site.bench``.

``s2bench BASIN`` runs the stream bench (``stream``); ``--followers N`` the followers
bench (``followers``); ``--unary MODE`` one of the unary HTTP modes (``unary``).
The endpoint comes from ``--endpoint`` or ``S2_ACCOUNT_ENDPOINT`` /
``S2_BASIN_ENDPOINT`` (plain ``http://``: h2c with prior knowledge). Exit status: 0
on success, 1 when what was read back differs from what was written, 2 on any other
failure.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import re
import sys
from typing import Any, TextIO

from s2site.bench import followers, stream, unary
from s2site.bench.records import BATCH_BYTES_MAX, RECORD_SIZE_MIN, VerificationError
from s2site.bench.s2client import S2Client, S2Failure, Target

EXIT_VERIFICATION = 1
EXIT_FAILURE = 2
_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def duration(text: str) -> float:
    """Seconds from ``500ms``, ``5s``, ``1m`` or a plain number of seconds."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"invalid duration {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def record_size(text: str) -> int:
    value = int(text)
    if not RECORD_SIZE_MIN <= value < BATCH_BYTES_MAX:
        raise argparse.ArgumentTypeError(f"record size must be in [{RECORD_SIZE_MIN}, 1 MiB)")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("basin", help="basin to use (created if missing)")
    parser.add_argument("--endpoint", help="http://host:port (default: S2_*_ENDPOINT)")
    parser.add_argument(
        "--record-size",
        type=record_size,
        default=8 * 1024,
        help="metered bytes per record, header included (default 8192)",
    )
    parser.add_argument(
        "--target-mibps",
        type=float,
        default=1.0,
        help="write rate; 0 = as fast as acknowledgements allow (default 1)",
    )
    parser.add_argument("--duration", type=duration, default=60.0, help="default 60s")
    parser.add_argument("--catchup-delay", type=duration, default=20.0, help="default 20s")
    parser.add_argument(
        "--batch-bytes",
        type=int,
        default=BATCH_BYTES_MAX,
        help="largest append input (default 1 MiB)",
    )
    parser.add_argument(
        "--linger",
        type=duration,
        default=0.0,
        help="hold a due record this long for more to join its append (default 0)",
    )
    parser.add_argument(
        "--inflight-bytes",
        type=int,
        default=16 * 1024 * 1024,
        help="unacknowledged bytes allowed in the session (default 16 MiB)",
    )
    parser.add_argument(
        "--followers",
        type=int,
        default=0,
        metavar="N",
        help="followers bench: N S2S read sessions follow one stream",
    )
    parser.add_argument(
        "--sse", action="store_true", help="followers bench: SSE sessions instead of S2S"
    )
    parser.add_argument(
        "--append-interval",
        type=duration,
        default=0.1,
        help="followers bench: time between appends (default 100ms)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no live status line")
    unary_group = parser.add_argument_group("unary HTTP modes")
    unary_group.add_argument("--unary", choices=unary.MODES, help="run a unary mode instead")
    unary_group.add_argument("--count", type=int, default=2000, help="latency: appends")
    unary_group.add_argument("--concurrency", type=int, default=1)
    unary_group.add_argument("--total-mib", type=int, default=256)
    unary_group.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--http2", action="store_true", help="HTTP/2 cleartext instead of HTTP/1.1")
    unary_group.add_argument(
        "--count-segments",
        metavar="DIR",
        help="fanin: count the segment objects written under this --local-root",
    )


def run(options: dict[str, Any], out: TextIO, err: TextIO) -> int:
    """Run what ``options`` ask for; returns the exit status."""
    try:
        target = Target.from_env(options["basin"], options["endpoint"])
    except ValueError as exc:
        err.write(f"s2bench: {exc}\n")
        return EXIT_FAILURE
    # The client measures latency on its own event loop: keep full garbage collections
    # from walking the modules it imported while it does.
    gc.collect()
    gc.freeze()
    try:
        report, lines = asyncio.run(_run(target, options, err))
    except VerificationError as exc:
        err.write(f"s2bench: verification failed: {exc}\n")
        return EXIT_VERIFICATION
    except (S2Failure, unary.BenchFailure, OSError) as exc:
        err.write(f"s2bench: {exc}\n")
        return EXIT_FAILURE
    if options["json"]:
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        out.write("\n".join(lines) + "\n")
    return 0


async def _run(
    target: Target, options: dict[str, Any], err: TextIO
) -> tuple[dict[str, Any], list[str]]:
    if options["unary"]:
        endpoint = target.basin_endpoint
        lines = await unary.run_unary(
            {**options, "endpoint": f"http://{endpoint.host}:{endpoint.port}"}
        )
        return {"mode": options["unary"], "lines": lines}, lines
    client = S2Client(target, http2=options["http2"])
    try:
        if options["followers"]:
            config = followers.FollowersConfig(
                followers=options["followers"],
                record_size=options["record_size"],
                interval_s=options["append_interval"],
                duration_s=options["duration"],
                sse=options["sse"],
            )
            report = await followers.run_followers_bench(client, config)
            return report, followers.report_lines(report)
        stream_config = stream.StreamBenchConfig(
            record_size=options["record_size"],
            target_mibps=options["target_mibps"],
            duration_s=options["duration"],
            catchup_delay_s=options["catchup_delay"],
            batch_bytes=min(options["batch_bytes"], BATCH_BYTES_MAX),
            inflight_bytes=options["inflight_bytes"],
            linger_s=options["linger"],
        )
        progress = None if options["no_progress"] else stream.terminal(err)
        report = await stream.run_stream_bench(client, stream_config, progress)
        return report, stream.report_lines(report)
    finally:
        await client.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="s2bench", description="Benchmark and verify an S2 endpoint."
    )
    add_arguments(parser)
    return run(vars(parser.parse_args(argv)), sys.stdout, sys.stderr)
