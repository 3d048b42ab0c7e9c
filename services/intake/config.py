"""Intake settings (env prefix HOLDLINE_INTAKE_)."""

from pydantic_settings import SettingsConfigDict

from shared.settings import Count, Seconds, ServiceSettings


class IntakeSettings(ServiceSettings):
    """Every intake knob, with defaults that run locally; sizes, limits and periods above 0."""

    model_config = SettingsConfigDict(env_prefix="HOLDLINE_INTAKE_", extra="ignore")

    service_name: str = "intake"
    port: int = 8001
    # JSON bodies: max_body_bytes (shared, 64 KiB) for declarations and cadre reports; a
    # registry sync may be larger (bulk)
    registry_max_body_bytes: Count = 8 * 1024 * 1024
    registry_max_households: Count = 2_000
    # department feeds are streamed: the body limit bounds the upload, not memory
    feed_max_bytes: Count = 4 * 1024 * 1024 * 1024
    feed_max_line_bytes: Count = 16 * 1024
    feed_batch_rows: Count = 5_000  # rows per commit
    # valid rows travel to risk in slices (FeedRecordsReceived), grouped by household shard;
    # shard n goes to partition n mod the partition count (shared.kafka.partition_for), so a
    # multiple of the signals topic's partitions keeps risk's replicas equally busy: 48 serves
    # 2, 3, 4, 6, 8, 12, 16, 24 and 48 partitions
    feed_slice_records: Count = 500
    feed_shards: Count = 48
    feed_errors_page: Count = 1_000
    # a batch "receiving" with no commit for this long is taken as interrupted: a retry with
    # its Idempotency-Key resumes it (a live upload commits every feed_batch_rows rows)
    feed_resume_after_seconds: Seconds = 300.0
    # mobile app abuse limits (rules §9 does not set them; these are operational defaults)
    rate_window_seconds: Seconds = 60.0
    rate_per_phone: Count = 5
    rate_per_ip: Count = 1_000
    # reads of a household's contact (phone in clear) per official and window: a cadre works
    # through a few alerts, not a village's phone book (rules §9)
    rate_contact_per_official: Count = 60
    # group commit of declarations and cadre reports: at most this many per transaction, and
    # this many transactions in flight; a batch takes what is queued, it never waits for more
    commit_batch_max: Count = 200
    commit_concurrency: Count = 2
