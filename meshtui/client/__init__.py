"""Where the CLI and the TUI get their data: the :class:`~meshtui.client.source.Source`
seam, its queries, and its implementations (the controller over gRPC, a
Prometheus over PromQL, a deterministic fake for tests)."""
