"""emojivoto's gRPC side: the ``emoji`` and ``voting`` services, and ``web``'s
channels to them.

As in the app Linkerd's tutorials run, ``web`` turns each HTTP request of
vote-bot into gRPC calls (``/emojivoto.v1.EmojiService/ListAll``,
``FindByShortcode``, ``/emojivoto.v1.VotingService/Vote<Emoji>``, ``Results``),
one vote method per emoji, and a doughnut vote fails with UNKNOWN.

How web reaches a service is how a pod's client would, and knows nothing of
the mesh beyond ``HTTP_PROXY``:

* explicit interception (``HTTP_PROXY`` set): the channel connects to the
  proxy's outbound port and names the service as its authority; the proxy
  routes the HTTP/2 connection by its first stream's ``:authority``. One
  connection goes to one endpoint, so with several replicas web keeps a few
  channels and the proxy spreads their connections.
* iptables (a kube-dns address): it resolves the service name with kube-dns
  and dials the pod IP, with the name as authority; iptables hands the
  connection to its proxy.
* neither (tests): it dials the address it was given.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable

import grpc

from meshtui.demo.emojivoto_v1 import emoji_pb2, emoji_pb2_grpc, voting_pb2, voting_pb2_grpc

Resolve = Callable[[str], Awaitable[str]]
Think = Callable[[float], Awaitable[None]]

#: Each call's deadline, as web gives it.
CALL_TIMEOUT_S = 5.0


def vote_method(shortcode: str) -> str:
    """The voting method for an emoji: ``:stuck_out_tongue:`` → ``VoteStuckOutTongue``."""
    return "Vote" + "".join(w[:1].upper() + w[1:] for w in shortcode.strip(":").split("_"))


VOTING = voting_pb2.DESCRIPTOR.services_by_name["VotingService"]
VOTE_METHODS = frozenset(m.name for m in VOTING.methods if m.name.startswith("Vote"))


class EmojiService(emoji_pb2_grpc.EmojiServiceServicer):
    def __init__(self, emoji: list[tuple[str, str]], think: Think) -> None:
        self.emoji = emoji
        self.by_code = dict(emoji)
        self.think = think

    async def ListAll(self, request: emoji_pb2.ListAllEmojiRequest,
                      context: grpc.aio.ServicerContext) -> emoji_pb2.ListAllEmojiResponse:
        await self.think(1.0)
        return emoji_pb2.ListAllEmojiResponse(
            list=[emoji_pb2.Emoji(shortcode=c, unicode=u) for c, u in self.emoji])

    async def FindByShortcode(self, request: emoji_pb2.FindByShortcodeRequest,
                              context: grpc.aio.ServicerContext
                              ) -> emoji_pb2.FindByShortcodeResponse:
        await self.think(1.0)
        code = request.shortcode
        if code not in self.by_code:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no emoji {code[:50]}")
        return emoji_pb2.FindByShortcodeResponse(
            emoji=emoji_pb2.Emoji(shortcode=code, unicode=self.by_code[code]))


class VotingService:
    """Counts votes; one method per emoji, served through a generic handler
    because the twenty methods differ only in the emoji they count."""

    def __init__(self, emoji: list[tuple[str, str]], failing: str, think: Think) -> None:
        self.codes = {vote_method(c): c for c, _ in emoji}
        missing = set(self.codes) - VOTE_METHODS
        if missing:  # the proto and the emoji list must agree
            raise ValueError(f"no voting method for {sorted(missing)}")
        self.failing = failing
        self.think = think
        self.votes: dict[str, int] = {}

    def _vote(self, code: str):  # type: ignore[no-untyped-def]
        async def vote(request: voting_pb2.VoteRequest, context: grpc.aio.ServicerContext
                       ) -> voting_pb2.VoteResponse:
            await self.think(2.0)
            if code == self.failing:  # the app's built-in fault, as a plain server error
                await context.abort(grpc.StatusCode.UNKNOWN, "ERROR")
            self.votes[code] = self.votes.get(code, 0) + 1
            return voting_pb2.VoteResponse()

        return vote

    async def results(self, request: voting_pb2.ResultsRequest,
                      context: grpc.aio.ServicerContext) -> voting_pb2.ResultsResponse:
        await self.think(2.0)
        top = sorted(self.votes.items(), key=lambda kv: -kv[1])[:10]
        return voting_pb2.ResultsResponse(
            results=[voting_pb2.VotingResult(shortcode=c, votes=n) for c, n in top])

    def handler(self) -> grpc.GenericRpcHandler:
        handlers = {
            name: grpc.unary_unary_rpc_method_handler(
                self._vote(code), request_deserializer=voting_pb2.VoteRequest.FromString,
                response_serializer=voting_pb2.VoteResponse.SerializeToString)
            for name, code in self.codes.items()}
        handlers["Results"] = grpc.unary_unary_rpc_method_handler(
            self.results, request_deserializer=voting_pb2.ResultsRequest.FromString,
            response_serializer=voting_pb2.ResultsResponse.SerializeToString)
        return grpc.method_handlers_generic_handler(VOTING.full_name, handlers)


async def serve_emoji(emoji: list[tuple[str, str]], think: Think, listen: str
                      ) -> tuple[grpc.aio.Server, int]:
    """Starts the emoji service; returns the server and its port."""
    server = grpc.aio.server()
    emoji_pb2_grpc.add_EmojiServiceServicer_to_server(EmojiService(emoji, think), server)
    port = server.add_insecure_port(listen)
    await server.start()
    return server, port


async def serve_voting(emoji: list[tuple[str, str]], failing: str, think: Think, listen: str
                       ) -> tuple[grpc.aio.Server, int]:
    """Starts the voting service; returns the server and its port."""
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((VotingService(emoji, failing, think).handler(),))
    port = server.add_insecure_port(listen)
    await server.start()
    return server, port


class Backends:
    """web's channels to emoji and voting (see the module's note for how they dial).

    Args:
        emoji, voting: each service's ``NAME:PORT`` (the authority its calls carry).
        proxy: the outbound proxy's ``HOST:PORT`` (explicit interception).
        resolve: turns a service's host name into a pod IP (iptables).
        channels: channels per service through the proxy, so that the proxy's
            per-connection choice of endpoint spreads calls over replicas.
    """

    def __init__(self, emoji: str, voting: str, *, proxy: str | None = None,
                 resolve: Resolve | None = None, channels: int = 1) -> None:
        self.emoji_authority = emoji
        self.voting_authority = voting
        self.proxy = proxy
        self.resolve = resolve
        self.slots = max(1, channels)
        self._turn = itertools.count()
        self._channels: dict[tuple[str, str | int], grpc.aio.Channel] = {}

    async def _channel(self, authority: str) -> grpc.aio.Channel:
        key: tuple[str, str | int]
        if self.proxy is not None:
            target, key = self.proxy, (authority, next(self._turn) % self.slots)
        elif self.resolve is not None:
            host, _, port = authority.rpartition(":")
            target = f"{await self.resolve(host)}:{port}"
            key = (authority, target)
        else:
            target, key = authority, (authority, 0)
        ch = self._channels.get(key)
        if ch is None:
            options: list[tuple[str, str | int]] = [
                # The demo says through HTTP_PROXY how to reach a service; gRPC
                # would otherwise read http_proxy itself and tunnel with CONNECT.
                ("grpc.enable_http_proxy", 0),
                # Channels of the same target must not share a connection: each
                # of them is a connection the proxy routes on its own.
                ("grpc.use_local_subchannel_pool", 1),
                # A service that starts after web (its proxy accepts, then answers
                # GOAWAY) is reached within a second of listening: gRPC's default
                # backoff grows to two minutes, and web's calls would wait it out.
                ("grpc.initial_reconnect_backoff_ms", 200),
                ("grpc.min_reconnect_backoff_ms", 200),
                ("grpc.max_reconnect_backoff_ms", 1000),
            ]
            if target != authority:
                options.append(("grpc.default_authority", authority))
            ch = self._channels[key] = grpc.aio.insecure_channel(target, options=options)
        return ch

    async def emoji(self) -> emoji_pb2_grpc.EmojiServiceStub:
        return emoji_pb2_grpc.EmojiServiceStub(await self._channel(self.emoji_authority))

    async def voting(self) -> voting_pb2_grpc.VotingServiceStub:
        return voting_pb2_grpc.VotingServiceStub(await self._channel(self.voting_authority))

    async def close(self) -> None:
        channels, self._channels = list(self._channels.values()), {}
        await asyncio.gather(*(ch.close() for ch in channels), return_exceptions=True)
