"""The database side of the background work (spec §2.8, §3.6, §8): synchronous functions
that the tasks of ``streams.lifecycle`` run in worker threads, one short transaction each.

Index rows leave in batches, and every removal, in the same transaction, lowers the
stream's storage accounting and notes the segments it referenced as possible
garbage (``GarbageSegment``). Garbage collection deletes such a segment only after a
grace period and only if, checked again just before, no index row references it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Count, F, Max, OuterRef, Q, QuerySet, Subquery, Sum
from django.utils import timezone

from storagecore import limits
from storagecore.catalog.django import chunk_ref, write_transaction
from storagecore.compaction import Row
from storagecore.config import RetentionPolicy
from storagecore.models import Chunk, GarbageSegment, StreamLog
from storagecore.ports import ChunkRef
from streams import events
from streams.models import Stream

_KEYS_PER_QUERY = 500


@dataclass(frozen=True)
class Storage:
    """Bytes of blocks in object storage, and the metered size of their records."""

    stored_bytes: int = 0
    metered_bytes: int = 0


def mark_garbage(keys: Iterable[str], now_ms: int) -> None:
    """Note segments that may have lost their last index row (inside a write transaction).
    A key noted again gets the later time: its grace period starts over."""
    GarbageSegment.objects.bulk_create(
        [GarbageSegment(segment_key=key, noticed_at_ms=now_ms) for key in sorted(set(keys))],
        update_conflicts=True,
        unique_fields=["segment_key"],
        update_fields=["noticed_at_ms"],
    )


def _remove_rows(rows: QuerySet[Chunk], now_ms: int, limit: int) -> int:
    """Remove up to ``limit`` of ``rows``; returns how many were removed."""
    with write_transaction():
        batch = list(
            rows.select_for_update()
            .order_by()
            .values_list("id", "stream_id", "segment_key", "length", "metered_bytes")[:limit]
        )
        if not batch:
            return 0
        mark_garbage((row[2] for row in batch), now_ms)
        Chunk.objects.filter(id__in=[row[0] for row in batch]).delete()
        freed: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for _id, stream_id, _key, length, metered in batch:
            freed[stream_id][0] += length
            freed[stream_id][1] += metered
        for stream_id, (stored, metered) in freed.items():
            StreamLog.objects.filter(stream_id=stream_id).update(
                stored_bytes=F("stored_bytes") - stored, metered_bytes=F("metered_bytes") - metered
            )
    return len(batch)


def remove_trimmed(
    stream_id: int | None, now_ms: int, limit: int = limits.removal_batch_rows
) -> int:
    """Index rows wholly below their stream's trim point: of one stream, or of all."""
    if stream_id is not None:
        log = StreamLog.objects.filter(stream_id=stream_id).first()
        if log is None or log.trim_point == 0:
            return 0
        return _remove_rows(
            Chunk.objects.filter(stream_id=stream_id, end_seq__lte=log.trim_point), now_ms, limit
        )
    trim_point = StreamLog.objects.filter(stream_id=OuterRef("stream_id")).values("trim_point")
    rows = Chunk.objects.filter(end_seq__lte=Subquery(trim_point[:1]))
    return _remove_rows(rows, now_ms, limit)


def remove_expired(now_ms: int, limit: int = limits.removal_batch_rows) -> int:
    """Index rows whose retention ran out (reads already skip them)."""
    return _remove_rows(Chunk.objects.filter(expires_at_ms__lte=now_ms), now_ms, limit)


def remove_stream_rows(stream_id: int, now_ms: int, limit: int = limits.removal_batch_rows) -> int:
    return _remove_rows(Chunk.objects.filter(stream_id=stream_id), now_ms, limit)


def streams_to_delete() -> list[int]:
    condition = Q(deleted_at__isnull=False) | Q(basin__deleted_at__isnull=False)
    return list(Stream.objects.filter(condition).values_list("pk", flat=True))


def remove_streams(stream_ids: list[int], now_ms: int) -> None:
    """Remove deleted streams: their index rows (in batches), log state and stream rows."""
    for stream_id in stream_ids:
        while remove_stream_rows(stream_id, now_ms) > 0:
            pass
    with write_transaction():
        StreamLog.objects.filter(stream_id__in=stream_ids).delete()
        Stream.objects.filter(pk__in=stream_ids).delete()


def full_trim_leaves_nothing(stream_id: int) -> bool:
    """Whether the trim point of a stream is at its tail: every record is trimmed."""
    log = StreamLog.objects.filter(stream_id=stream_id).first()
    return (
        log is not None and 0 < log.trim_point < limits.u64_max and log.trim_point >= log.next_seq
    )


# Garbage collection.


def garbage_due(cutoff_ms: int, limit: int = limits.gc_batch_segments) -> list[str]:
    """Segments noted as possible garbage at or before ``cutoff_ms``."""
    rows = GarbageSegment.objects.filter(noticed_at_ms__lte=cutoff_ms).order_by("noticed_at_ms")
    return list(rows.values_list("segment_key", flat=True)[:limit])


def referenced(keys: list[str]) -> set[str]:
    """The keys of ``keys`` that some index row points at."""
    found: set[str] = set()
    for start in range(0, len(keys), _KEYS_PER_QUERY):
        part = keys[start : start + _KEYS_PER_QUERY]
        rows = Chunk.objects.filter(segment_key__in=part).values_list("segment_key", flat=True)
        found.update(rows.distinct())
    return found


def forget_garbage(keys: list[str], cutoff_ms: int) -> None:
    """Drop the notes of ``keys`` taken at or before ``cutoff_ms`` (a later note stays)."""
    with write_transaction():
        for start in range(0, len(keys), _KEYS_PER_QUERY):
            GarbageSegment.objects.filter(
                segment_key__in=keys[start : start + _KEYS_PER_QUERY],
                noticed_at_ms__lte=cutoff_ms,
            ).delete()


def notice_unreferenced(keys: list[str], now_ms: int) -> int:
    """Note the listed segments that no index row references (flushes that never
    committed); a segment already noted keeps its first time. Returns how many are new."""
    unreferenced = sorted(set(keys) - referenced(keys))
    if not unreferenced:
        return 0
    known = set(
        GarbageSegment.objects.filter(segment_key__in=unreferenced).values_list(
            "segment_key", flat=True
        )
    )
    new = [key for key in unreferenced if key not in known]
    with write_transaction():
        GarbageSegment.objects.bulk_create(
            [GarbageSegment(segment_key=key, noticed_at_ms=now_ms) for key in new],
            ignore_conflicts=True,
        )
    return len(new)


# Compaction.


def streams_with_small_rows(small_bytes: int, limit: int) -> list[int]:
    rows = (
        Chunk.objects.filter(length__lt=small_bytes)
        .values("stream_id")
        .annotate(n=Count("id"))
        .filter(n__gte=2)
        .order_by("-n")
        .values_list("stream_id", flat=True)
    )
    return list(rows[:limit])


def rows_to_compact(stream_id: int, now_ms: int, limit: int) -> tuple[list[Row], bool]:
    """A stream's unexpired rows at or above its trim point, in order; and whether they
    reach the stream's last row."""
    log = StreamLog.objects.filter(stream_id=stream_id).first()
    if log is None or log.trim_point >= limits.u64_max:
        return [], False
    rows = (
        Chunk.objects.filter(stream_id=stream_id, start_seq__gte=log.trim_point)
        .filter(Q(expires_at_ms__isnull=True) | Q(expires_at_ms__gt=now_ms))
        .order_by("start_seq")[: limit + 1]
    )
    found = [Row(row.pk, chunk_ref(row)) for row in rows]
    return found[:limit], len(found) <= limit


class CompactionConflict(Exception):
    """The rows to replace changed while their replacement was written."""


def switch_rows(old: list[Row], new: ChunkRef, now_ms: int) -> None:
    """Replace ``old`` rows by ``new`` in one transaction, or not at all."""
    with write_transaction():
        deleted, _ = Chunk.objects.filter(id__in=[row.row_id for row in old]).delete()
        if deleted != len(old):
            raise CompactionConflict(f"{len(old) - deleted} rows of stream {new.stream_id} gone")
        Chunk.objects.create(
            stream_id=new.stream_id,
            start_seq=new.start_seq,
            end_seq=new.end_seq,
            first_ts=new.first_ts,
            last_ts=new.last_ts,
            metered_bytes=new.metered_bytes,
            expires_at_ms=new.expires_at_ms,
            segment_key=new.segment_key,
            offset=new.offset,
            length=new.length,
        )
        mark_garbage((row.chunk.segment_key for row in old), now_ms)
        saved = sum(row.chunk.length for row in old) - new.length
        StreamLog.objects.filter(stream_id=new.stream_id).update(
            stored_bytes=F("stored_bytes") - saved
        )


def abandon_segment(key: str, now_ms: int) -> None:
    with write_transaction():
        mark_garbage([key], now_ms)


# Storage accounting.


def stream_storage(stream_id: int) -> Storage:
    log = StreamLog.objects.filter(stream_id=stream_id).first()
    return Storage() if log is None else Storage(log.stored_bytes, log.metered_bytes)


def basin_storage(basin_name: str) -> Storage:
    ids = Stream.objects.filter(basin__name=basin_name).values("pk")
    totals = StreamLog.objects.filter(stream_id__in=ids).aggregate(
        stored=Sum("stored_bytes"), metered=Sum("metered_bytes")
    )
    return Storage(totals["stored"] or 0, totals["metered"] or 0)


# Delete-on-empty (spec §8).


def empty_deadline_ms(retention: RetentionPolicy, min_age_s: int, now_ms: int) -> int:
    """now + retention age (0 for infinite) + min_age + the 600 s padding."""
    age_s = retention.age_s or 0
    return now_ms + (age_s + min_age_s + limits.delete_on_empty_padding_s) * 1000


def arm_after_full_trim(stream_id: int, now_ms: int) -> None:
    with write_transaction():
        stream = Stream.objects.select_for_update().filter(pk=stream_id).first()
        if stream is None or stream.is_deleting:
            return
        config = stream.stream_config()
        if config.delete_on_empty_min_age_s > 0:
            stream.empty_deadline_ms = empty_deadline_ms(
                config.retention_policy, config.delete_on_empty_min_age_s, now_ms
            )
            stream.save(update_fields=["empty_deadline_ms"])


def streams_past_deadline(now_ms: int, limit: int) -> list[int]:
    rows = Stream.objects.filter(
        empty_deadline_ms__lte=now_ms, deleted_at__isnull=True, basin__deleted_at__isnull=True
    )
    return list(rows.order_by("empty_deadline_ms").values_list("pk", flat=True)[:limit])


@dataclass(frozen=True)
class EmptyCheck:
    """The outcome for one stream whose delete-on-empty deadline passed."""

    deleted: bool
    new_deadline_ms: int | None


def examine_empty(stream_id: int, now_ms: int) -> EmptyCheck:
    """Delete the stream (as DELETE does) if it qualifies (spec §8), else re-arm or disarm.

    The reference refreshes the deadline on appends (age retention); here the check
    re-arms it from the last write instead, which gives the same deadline."""
    with write_transaction():
        stream = (
            Stream.objects.select_for_update().select_related("basin").filter(pk=stream_id).first()
        )
        if stream is None or stream.is_deleting or stream.empty_deadline_ms is None:
            return EmptyCheck(False, None)
        config = stream.stream_config()
        min_age_ms = config.delete_on_empty_min_age_s * 1000
        deadline = stream.empty_deadline_ms
        retention = config.retention_policy
        new_deadline: int | None = None
        if min_age_ms > 0:
            log = StreamLog.objects.filter(stream_id=stream_id).first()
            written = log.written_at_ms if log is not None and log.written_at_ms else 0
            last_write = written or int(stream.created_at.timestamp() * 1000)
            unexpired = Chunk.objects.filter(stream_id=stream_id).filter(
                Q(expires_at_ms__isnull=True) | Q(expires_at_ms__gt=now_ms)
            )
            if log is not None and log.trim_point > 0:
                unexpired = unexpired.filter(end_seq__gt=log.trim_point)
            if last_write >= deadline - min_age_ms:
                if retention.age_s is not None:
                    new_deadline = empty_deadline_ms(
                        retention, config.delete_on_empty_min_age_s, last_write
                    )
            elif unexpired.exists():
                if retention.age_s is not None:
                    latest = unexpired.aggregate(latest=Max("expires_at_ms"))["latest"]
                    new_deadline = (
                        int(latest) + min_age_ms + limits.delete_on_empty_padding_s * 1000
                    )
            else:
                stream.deleted_at = timezone.now()
                stream.empty_deadline_ms = None
                stream.save(update_fields=["deleted_at", "empty_deadline_ms"])
                basin, name = stream.basin.name, stream.name
                transaction.on_commit(lambda: events.stream_changed(basin, name))
                return EmptyCheck(True, None)
        stream.empty_deadline_ms = new_deadline
        stream.save(update_fields=["empty_deadline_ms"])
        return EmptyCheck(False, new_deadline)
