"""The control plane: knows every pod, scrapes every proxy, keeps the time
windows, answers stat summaries and merges tap streams for the clients.

Start one from Python with :class:`meshtui.controller.server.Controller`, or from
the command line with ``meshtui controller``.
"""
