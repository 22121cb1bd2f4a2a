"""One module per command. Each defines ``HELP``, ``add_arguments(parser)`` and
``run(args) -> int`` and imports nothing heavy at module level, so that the
whole parser (and ``meshtui --help``) builds in a few milliseconds."""

# The order `meshtui --help` lists them in.
COMMANDS = (
    "stat",
    "tap",
    "top",
    "edges",
    "dashboard",
    "demo",
    "controller",
    "proxy",
    "proxy_init",
    "inject",
    "check",
    "version",
)
