"""Every limit of the S2 API in one place, with its unit in the name (spec §2.1, §3.4, §4)."""

from __future__ import annotations

# Names (spec §2.1).
basin_name_bytes_min = 8
basin_name_bytes_max = 48
stream_name_bytes_max = 512
request_token_bytes_max = 36
fencing_token_bytes_max = 36
location_name_chars_min = 1
location_name_chars_max = 64
access_token_id_bytes_min = 1
access_token_id_bytes_max = 96

# Listing (spec §2.7).
list_limit_max = 1000

# Request bodies (spec §1.4): unary bodies after decompression.
unary_body_bytes_max = 2 * 1024 * 1024

# Response compression threshold (spec §1.7).
compress_body_bytes_min = 1024

# Configuration defaults (spec §2.2).
default_retention_age_s = 7 * 24 * 3600

# Background deletion pass (spec §8): every 60 s, ±10 % jitter.
deletion_pass_interval_s = 60.0
# At shutdown, open sessions are told to end (503) and given this long to do so.
session_close_grace_s = 2.0
session_goodbye_s = 0.1
deletion_pass_jitter_ratio = 0.1

# Unsigned 64-bit integers on the wire.
u64_max = 2**64 - 1
u32_max = 2**32 - 1

# Records and batches (spec §3.4).
record_metered_bytes_max = 1024 * 1024
batch_records_max = 1000
batch_metered_bytes_max = 1024 * 1024
# Metered size of a record: 8 bytes of overhead, 2 per header, then the bytes.
record_overhead_bytes = 8
header_overhead_bytes = 2

# Customer-supplied keys (spec §7): the trimmed header is 1-44 characters (Base64 of 32
# bytes); AES-256-GCM records may not be assigned sequence numbers above u32::MAX.
encryption_key_header_chars_max = 44
encryption_key_bytes = 32
aes_gcm_seq_num_max = 2**32 - 1

# Unary reads (spec §4.4): limits are clamped to these, and waiting to this.
read_count_max = 1000
read_bytes_max = 1024 * 1024
read_wait_s_max = 60

# The engine (ARCHITECTURE §2–§3).
append_inflight_bytes_default = 128 * 1024 * 1024
append_inflight_bytes_min = 1024 * 1024
flush_interval_s_local = 0.005
flush_interval_s_s3 = 0.050
flush_bytes_max = 8 * 1024 * 1024
streamer_idle_timeout_s = 60.0
streamer_recent_bytes_max = 4 * 1024 * 1024
follower_queue_batches_max = 64
block_cache_bytes_max = 64 * 1024 * 1024
index_rows_per_fetch = 16
# A sequential reader's fetches double up to this many rows.
index_rows_per_fetch_max = 512
index_cache_streams_max = 1024

# Background work (spec §2.8, §3.6, §8; README "Background tasks"). Passes run every
# interval ±10 %; the trim pass also runs as soon as a trim becomes durable.
trim_pass_interval_s = 60.0
retention_pass_interval_s = 60.0
delete_on_empty_pass_interval_s = 60.0
# Index rows removed per transaction (trim, retention, deletion).
removal_batch_rows = 256
# After each batch of background database work, a pause as long as it took, at most this.
background_pause_max_s = 0.5
# Garbage collection: how often it runs, and how long an unreferenced segment is kept
# (readers that fetched its index rows just before may still be reading it).
gc_pass_interval_s = 60.0
gc_grace_s = 60.0
gc_batch_segments = 256
# Listing the store for segments that no index row ever referenced (failed flushes).
orphan_sweep_interval_s = 3600.0
# Delete-on-empty deadline padding (spec §8), and how often appends refresh it.
delete_on_empty_padding_s = 600
# Compaction (storagecore.compaction).
compaction_pass_interval_s = 60.0
compaction_target_bytes = 8 * 1024 * 1024
compaction_expiry_slack_ms = 60_000
compaction_tail_runs_min = 8
compaction_rows_per_stream = 4096
compaction_streams_per_pass = 256
