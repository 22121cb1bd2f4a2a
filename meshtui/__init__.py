"""meshtui: a terminal window onto a service mesh.

Kept free of imports: ``meshtui --help`` must start fast, so each command
imports Textual and grpc only when it runs.
"""

__version__ = "0.1.0"
