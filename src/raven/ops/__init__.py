"""Operations: Prometheus metrics, health checks, tracing and their HTTP endpoints.

Components keep plain counters (ints, `stats` structs, latency
`Histogram`s); this package reads them when Prometheus scrapes or a health
check runs, so nothing here sits on the hot path.

- `metrics.py`: the scrape-time collector and its registry of sources.
- `catalog.py`: every metric family Raven exports, with help text and labels.
- `sources.py`: the sources of the core and the API; `feed_sources.py` the
  connector's (and its health checks); `store_sources.py` the stores'.
- `health.py`: the registry of component checks and the monitor that feeds
  the gRPC health service.
- `http.py`: the aiohttp listeners for /metrics, /health and /ready.
- `tracing.py`: optional OpenTelemetry spans, free when disabled.
- `wiring.py`: `Operations`, which attaches all of it to a `RavenApp`.
"""
