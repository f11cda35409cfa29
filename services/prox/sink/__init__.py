"""`prox service sink`: the training-data sink (faust-streaming) writing de-duplicated, durable shards.

Modules: `settings` (SinkSettings, on the common settings machinery), `rows` (message -> columns),
`storage` (local directory or fsspec URL: temp name, fsync, atomic publish), `manifest` (`_manifest.jsonl`),
`shards` (rolling Parquet / JSONL.gz writer), `dedup` (the id table with a time-to-live), `core` (the
shard-close protocol and its commit rule), `app` (the faust app and agent), `service` (CLI entry, local-stack hook).
"""
