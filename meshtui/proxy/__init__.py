"""The sidecar proxy: data path, telemetry recorder, tap fan-out and endpoints.

Kept free of imports: ``meshtui --help`` must stay fast, and each module here
pulls in grpc or prometheus-client only when it is itself imported.
"""
