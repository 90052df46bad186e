"""Ops: what operators see and do: reports, recovery (resume, find stuck runs), health, the
Prometheus gauges, replay checks, retention, the log filter of heartbeat probes."""
