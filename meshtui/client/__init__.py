"""The gRPC client the CLI and the TUI use to talk to the controller."""
