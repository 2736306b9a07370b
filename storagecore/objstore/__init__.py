"""Object store adapters: in-memory, local directory, S3."""
