"""Plain output for scripts and pipes: stat tables, tap lines, top's routes, JSON.

Owned by no UI: the commands print through it when stdout is not a terminal
or ``-o`` is given. Its columns and field names come from :mod:`meshtui.model`.
"""
