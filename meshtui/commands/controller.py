"""meshtui controller: the control plane clients talk to."""

from __future__ import annotations

import argparse

HELP = "run the controller: scrapes every proxy, answers stat and tap"
DESCRIPTION = """\
Run the control plane. It reads the inventory (pods, their addresses and their
proxies' tap ports) and re-reads it when the file changes, scrapes every proxy
once a second, keeps 15 minutes of history, and serves the Mesh, Stats and
ResourceTap gRPC services (plus grpc.health.v1 and reflection) for
`meshtui stat`, `tap`, `top` and the dashboard."""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--listen", metavar="HOST:PORT", default=None,
                   help="where clients reach it (default: the clients' default server)")
    p.add_argument("--inventory", metavar="FILE", help="YAML/JSON file of the mesh's pods")
    p.add_argument("--scrape-interval", metavar="SECONDS", type=float, default=1.0,
                   help="how often every proxy is scraped (default %(default)s)")
    p.add_argument("--scrape-timeout", metavar="SECONDS", type=float, default=0.8,
                   help="each scrape's deadline (default %(default)s)")
    p.add_argument("--via", metavar="HOST:PORT", default=None,
                   help="reach the proxies through this outbound proxy, naming each as the "
                        "authority (a controller behind its own proxy without iptables); "
                        "with --state-dir, meshed proxies' tap ports are dialled directly "
                        "over mutual TLS")
    p.add_argument("--state-dir", metavar="DIR", default=None,
                   help="where the identity's trust anchor, issuer and pod-token secret are "
                        "kept (created 0600 at first start): with it the controller issues "
                        "the proxies' certificates")
    p.add_argument("--identity-listen", metavar="HOST:PORT", default=None,
                   help="with --state-dir: the TLS port where proxies get their certificates "
                        "(default: --listen's host, the next port)")
    p.add_argument("--pod-token", metavar="NAMESPACE/POD", default=None,
                   help="print the identity token of a pod's proxy (from --state-dir; good "
                        "for 24 hours) and exit")
    p.add_argument("--credential-file", metavar="FILE", default=None,
                   help="where to write the API credential clients must send (0600; default: "
                        "where the CLI looks for --listen's address)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every change, not only faults")


def run(args: argparse.Namespace) -> int:
    import asyncio
    import logging
    import signal

    from meshtui.cli import DEFAULT_SERVER
    from meshtui.errors import RuntimeFailure, UsageError
    from meshtui.model.inventory import InventoryError

    authority = None
    if args.state_dir:
        from meshtui.identity.authority import Authority

        try:
            authority = Authority.in_state_dir(args.state_dir)
        except (OSError, ValueError) as e:
            raise RuntimeFailure(f"controller: identity in {args.state_dir}: {e}") from None
    if args.pod_token:
        ns, _, pod = args.pod_token.partition("/")
        if authority is None or not ns or not pod:
            raise UsageError("controller: --pod-token NAMESPACE/POD needs --state-dir")
        print(authority.pod_token(ns, pod))
        return 0
    if not args.inventory:
        raise UsageError("controller: --inventory FILE is required")
    if not 0.05 <= args.scrape_interval <= 60 or not args.scrape_timeout > 0:
        raise UsageError("controller: --scrape-interval must be 0.05..60 s and "
                         "--scrape-timeout above 0")
    from meshtui.model.sanitize import clean

    class Shown(logging.Formatter):
        """Each line as a terminal can show it: the names in it are the inventory's and
        the errors a proxy's, whoever wrote them, so their controls become escapes."""

        def formatMessage(self, record: logging.LogRecord) -> str:
            record.message = clean(record.message)
            return super().formatMessage(record)

    handler = logging.StreamHandler()
    handler.setFormatter(Shown("meshtui controller: %(message)s"))
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        handlers=[handler])
    listen = args.listen or DEFAULT_SERVER
    from meshtui.model.inventory import parse_address

    try:
        parse_address(listen, what="--listen address")
    except InventoryError as e:
        raise UsageError(f"controller: {e}") from None

    from meshtui.controller.server import Controller, ListenError
    from meshtui.runtime import tune_gc

    try:
        if args.via:
            parse_address(args.via, what="--via address")
        identity_listen = args.identity_listen or _next_port(listen)
        if authority is not None:
            ident = parse_address(identity_listen, what="--identity-listen address")
            api = parse_address(listen, what="--listen address")
            wild = ("0.0.0.0", "::", "")
            if ident.port == api.port and (ident.host == api.host or ident.host in wild
                                           or api.host in wild):
                # gRPC would bind both (SO_REUSEPORT) and split connections between the
                # plain API and the TLS identity service at random.
                raise UsageError(f"controller: --identity-listen {identity_listen} is the "
                                 f"port of --listen {listen}: give it a port of its own")
        from pathlib import Path

        from meshtui.identity import credential

        cred = Path(args.credential_file) if args.credential_file else \
            credential.path_for(credential.clients_address(listen))
        # Written once the port is this controller's: a second one started on a busy
        # address must not lock the clients out of the first.
        token = credential.new_token()
        ctl = Controller(args.inventory, listen, scrape_interval_s=args.scrape_interval,
                         scrape_timeout_s=args.scrape_timeout, via=args.via,
                         identity=authority, identity_listen=identity_listen,
                         api_token=token)
    except InventoryError as e:
        raise UsageError(str(e)) from None

    tune_gc()

    async def main() -> None:
        try:
            await ctl.start()
        except ListenError as e:
            raise RuntimeFailure(str(e)) from None
        try:
            credential.create(cred, token)
        except OSError as e:
            await ctl.stop()
            raise RuntimeFailure(f"controller: cannot write the credential {cred}: "
                                 f"{(e.strerror or str(e)).lower()}") from None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            await stop.wait()
        finally:
            await ctl.stop()

    asyncio.run(main())
    return 0


def _next_port(listen: str) -> str:
    """The identity port's default: the API's host, the port after it (0 stays 0)."""
    host, _, port = listen.rpartition(":")
    if not (port.isascii() and port.isdigit()):
        return listen  # refused as a --listen address already
    return f"{host}:{int(port) + 1 if int(port) else 0}"
