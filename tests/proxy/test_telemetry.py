"""The telemetry recorder: what the data path reports is what a scrape shows."""

from __future__ import annotations

from meshtui.model.histogram import Histogram
from meshtui.model.inventory import Workload
from meshtui.proxy.telemetry import OTHER, Direction, Identity, Telemetry
from meshtui.v1 import proxy_pb2

IDENT = Identity("emojivoto", "web", "web-0", "10.0.0.5")
PEERS = {("10.0.0.7", 8080): Workload("emojivoto", "emoji", "emoji-0")}


class FakeClock:
    def __init__(self, t: float = 100.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def make(clock: FakeClock | None = None, **kw: object) -> Telemetry:
    return Telemetry(IDENT, lambda ip, port: PEERS.get((ip, port)), clock or FakeClock(), **kw)  # type: ignore[arg-type]


def one(tel: Telemetry, status: int | None, *, authority: str = "emoji-svc:8080",
        dst: tuple[str, int] = ("10.0.0.7", 8080), direction: Direction = Direction.OUTBOUND,
        headers: list[tuple[bytes, bytes]] | None = None,
        trailers: list[tuple[bytes, bytes]] | None = None, clock: FakeClock | None = None,
        latency: float = 0.0) -> None:
    obs = tel.request(direction, ("10.0.0.5", 40000), dst, 1, "GET", "http", authority, "/x", [])
    if clock is not None:
        clock.advance(latency)
    if status is None:
        obs.reset()
        return
    obs.response_start(status, headers or [])
    obs.response_end(10, trailers)


def responses(scrape: proxy_pb2.ScrapeResponse) -> dict[tuple[str, int, bool], int]:
    return {(r.authority, r.status_code, r.success): r.count for r in scrape.responses}


def test_requests_and_responses_are_counted_by_route_and_classification() -> None:
    tel = make()
    for _ in range(3):
        one(tel, 200)
    one(tel, 404)
    one(tel, 503)
    one(tel, None)  # upstream went away before answering
    one(tel, 200, authority="other-svc:80", dst=("10.0.0.9", 80))
    s = tel.scrape()
    reqs = {(r.authority, r.dst_addr): r.count for r in s.requests}
    assert reqs == {("emoji-svc:8080", "10.0.0.7:8080"): 6, ("other-svc:80", "10.0.0.9:80"): 1}
    assert responses(s) == {
        ("emoji-svc:8080", 200, True): 3,
        ("emoji-svc:8080", 404, True): 1,
        ("emoji-svc:8080", 503, False): 1,
        ("emoji-svc:8080", 0, False): 1,
        ("other-svc:80", 200, True): 1,
    }


def test_destination_workload_comes_from_resolve_outbound_and_own_pod_inbound() -> None:
    tel = make()
    one(tel, 200)
    one(tel, 200, dst=("10.0.0.99", 80), authority="unknown:80")
    one(tel, 200, direction=Direction.INBOUND, dst=("127.0.0.1", 8080), authority="web:80")
    dst = {(r.direction, r.authority): (r.dst.namespace, r.dst.deployment, r.dst.pod)
           for r in tel.scrape().requests}
    assert dst == {
        (Direction.OUTBOUND, "emoji-svc:8080"): ("emojivoto", "emoji", "emoji-0"),
        (Direction.OUTBOUND, "unknown:80"): ("", "", ""),
        (Direction.INBOUND, "web:80"): ("emojivoto", "web", "web-0"),
    }


def test_grpc_status_in_trailers_or_headers_decides_success() -> None:
    """As Linkerd classifies: UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE and
    DATA_LOSS fail; NOT_FOUND and the other codes are the application's answers."""
    tel = make()
    one(tel, 200, trailers=[(b"grpc-status", b"0")])
    one(tel, 200, trailers=[(b"Grpc-Status", b"14")])
    one(tel, 200, headers=[(b"content-type", b"application/grpc"), (b"grpc-status", b"5")])
    one(tel, 200, trailers=[(b"grpc-status", b"garbage")])  # unreadable: UNKNOWN
    for code in (4, 13, 15, 16, 3):
        one(tel, 200, trailers=[(b"grpc-status", str(code).encode())])
    assert responses(tel.scrape()) == {
        ("emoji-svc:8080", 200, True): 4,  # 0, 5, 16, 3
        ("emoji-svc:8080", 200, False): 5,  # 14, 2, 4, 13, 15
    }
    [route] = tel.routes()
    assert route.responses[(200, False)].grpc == {14: 1, 2: 1, 4: 1, 13: 1, 15: 1}
    assert route.responses[(200, True)].grpc == {0: 1, 5: 1, 16: 1, 3: 1}


def test_latency_is_request_to_response_start_in_microseconds() -> None:
    clock = FakeClock()
    tel = make(clock)
    for ms in (1, 2, 3, 50):
        one(tel, 200, clock=clock, latency=ms / 1000)
    (series,) = tel.scrape().responses
    h = Histogram.from_sparse(series.latency.indexes, series.latency.counts, series.latency.sum_us)
    assert h.count == 4 and series.latency.count == 4
    assert abs(series.latency.sum_us - 56_000) < 1
    assert abs(h.quantile(0.5) - 2_000) / 2_000 < 0.01  # type: ignore[operator]
    assert abs(h.quantile(1.0) - 50_000) / 50_000 < 0.01  # type: ignore[operator]


def test_time_after_response_start_is_not_latency() -> None:
    clock = FakeClock()
    tel = make(clock)
    obs = tel.request(Direction.INBOUND, ("1.1.1.1", 1), ("127.0.0.1", 80), 1, "GET", "http",
                      "a", "/", [])
    clock.advance(0.010)
    obs.response_start(200, [])
    clock.advance(5.0)  # a long body
    obs.response_end(1 << 20)
    (series,) = tel.scrape().responses
    assert abs(series.latency.sum_us - 10_000) < 1


def test_reports_after_the_end_are_ignored() -> None:
    tel = make()
    obs = tel.request(Direction.OUTBOUND, ("a", 1), ("10.0.0.7", 8080), 1, "GET", "http", "x",
                      "/", [])
    obs.response_start(200, [])
    obs.response_end(5)
    obs.response_end(5)
    obs.reset()
    assert responses(tel.scrape()) == {("x", 200, True): 1}


def test_reset_after_response_start_is_a_failure_with_that_status() -> None:
    tel = make()
    obs = tel.request(Direction.OUTBOUND, ("a", 1), ("10.0.0.7", 8080), 1, "GET", "http", "x",
                      "/", [])
    obs.response_start(200, [])
    obs.reset()
    assert responses(tel.scrape()) == {("x", 200, False): 1}


def test_tcp_connections_and_bytes() -> None:
    tel = make()
    a = tel.tcp_open(Direction.INBOUND, ("10.0.0.9", 5555), ("127.0.0.1", 8080))
    b = tel.tcp_open(Direction.INBOUND, ("10.0.0.9", 5556), ("127.0.0.1", 8080))
    c = tel.tcp_open(Direction.OUTBOUND, ("127.0.0.1", 5557), ("10.0.0.7", 8080))
    a.read(100)
    a.write(2000)
    b.read(7)
    c.write(3)
    a.close()
    a.close()  # idempotent
    assert a.conn_id != b.conn_id
    by_dir = {t.direction: t for t in tel.scrape().tcp}
    inbound, outbound = by_dir[Direction.INBOUND], by_dir[Direction.OUTBOUND]
    assert (inbound.open_total, inbound.close_total, inbound.open_connections) == (2, 1, 1)
    assert (inbound.read_bytes_total, inbound.write_bytes_total) == (107, 2000)
    assert inbound.dst.deployment == "web" and inbound.dst_addr == "127.0.0.1:8080"
    assert (outbound.open_connections, outbound.write_bytes_total) == (1, 3)
    assert outbound.dst.pod == "emoji-0"


def test_authority_cardinality_is_capped_and_overflow_counted() -> None:
    tel = make(max_routes=10)
    for i in range(25):
        one(tel, 200, authority=f"host-{i}:80")
    s = tel.scrape()
    assert len(s.requests) == 11  # ten routes and the overflow one
    by_auth = {r.authority: r.count for r in s.requests}
    assert by_auth[OTHER] == 15
    assert sum(by_auth.values()) == 25
    assert tel.overflow_requests == 15
    # Known routes keep counting past the cap.
    one(tel, 200, authority="host-3:80")
    assert {r.authority: r.count for r in tel.scrape().requests}["host-3:80"] == 2


def test_tcp_destinations_are_capped() -> None:
    tel = make(max_tcp=4)
    for port in range(1, 11):
        tel.tcp_open(Direction.OUTBOUND, ("127.0.0.1", 1), ("10.1.1.1", port)).close()
    s = tel.scrape()
    assert len(s.tcp) == 5
    assert sum(t.open_total for t in s.tcp) == 10
    assert tel.overflow_connections == 6


def test_long_authorities_are_cut_for_labels() -> None:
    tel = make()
    one(tel, 200, authority="a" * 5000)
    (r,) = tel.scrape().requests
    assert len(r.authority) == 255


def test_scrape_carries_identity_and_a_run_id_per_start() -> None:
    a, b = make(), make()
    s = a.scrape()
    assert (s.proxy.workload.namespace, s.proxy.workload.deployment, s.proxy.workload.pod) == (
        "emojivoto", "web", "web-0")
    assert s.proxy.pod_ip == "10.0.0.5"
    assert s.proxy.version and s.proxy.start_time_ms > 0 and s.timestamp_ms >= s.proxy.start_time_ms
    assert len(s.proxy.run_id) >= 16 and s.proxy.run_id != b.scrape().proxy.run_id
    assert a.scrape().proxy.run_id == s.proxy.run_id


def test_unparsed_requests_are_still_counted() -> None:
    tel = make()
    obs = tel.request(Direction.INBOUND, ("1.1.1.1", 1), ("127.0.0.1", 80), 1, "", "http", "",
                      "", [])
    obs.response_start(400, [])
    obs.response_end(0)
    assert responses(tel.scrape()) == {("", 400, True): 1}


def test_latencies_land_in_the_buckets_the_histogram_itself_picks() -> None:
    """The recorder buckets latencies its own (faster) way: bucket for bucket, and in
    count and sum, it must agree with Histogram.record, bounds and extremes included."""
    from meshtui.model.histogram import MAX_US, bucket_upper

    values_us = [0.0, 0.25, 0.5, 0.5000001, 1.0, 37.3, 999.99, 1000.0, 123_456.7,
                 3_600e6, MAX_US, MAX_US * 2]
    values_us += [bucket_upper(i) for i in range(0, 1200, 7)]
    values_us += [bucket_upper(i) * (1 + 1e-12) for i in range(0, 1200, 13)]
    clock = FakeClock()
    tel = make(clock)
    expected = Histogram()
    for us in values_us:
        obs = tel.request(Direction.INBOUND, ("10.0.0.9", 5000), ("10.0.0.5", 8080), 1, "GET",
                          "http", "web", "/", [])
        start = clock()
        clock.t = start + us / 1e6
        obs.response_start(200, [])
        obs.response_end(0)
        # what the recorder measured, recorded the histogram's own way
        expected.record((clock() - start) * 1e6)
    (series,) = tel.scrape().responses
    got = Histogram.from_sparse(list(series.latency.indexes), list(series.latency.counts),
                                series.latency.sum_us)
    assert got.counts == expected.counts
    assert got.count == expected.count == len(values_us)
    assert abs(got.sum_us - expected.sum_us) <= 1e-6 * expected.sum_us


def test_the_wire_carries_how_many_of_a_destinations_responses_were_mutual_tls() -> None:
    """The scrape sums the plain and mutual-TLS series of one destination: tls says
    all of it was, and a mix carries its count of mutual-TLS responses (from which the
    controller judges an edge's SECURED over a window), per status."""
    tel = make()
    server = "emoji.emojivoto.serviceaccount.identity.meshtui.local"

    def call(dst: tuple[str, int], tls_id: str, status: int = 200) -> None:
        obs = tel.request(Direction.OUTBOUND, ("10.0.0.5", 40000), dst, 1, "GET", "http",
                          "emoji-svc:8080", "/x", [], tls_id=tls_id)
        obs.response_start(status, [])
        obs.response_end(10, None)

    def wire() -> dict[tuple[str, int], tuple[int, bool, int]]:
        return {(r.dst_addr, r.status_code): (r.count, r.tls, r.tls_count)
                for r in tel.scrape().responses}

    for _ in range(2):
        call(("10.0.0.7", 8080), server)
    call(("10.0.0.9", 8080), "")  # one plain call to the second destination
    call(("10.0.0.9", 8080), server)
    call(("10.0.0.9", 8080), server, 500)
    assert wire() == {("10.0.0.7:8080", 200): (2, True, 0),
                      ("10.0.0.9:8080", 200): (2, False, 1),
                      ("10.0.0.9:8080", 500): (1, True, 0)}
    # The live series go on counting apart: a second scrape sums them again.
    call(("10.0.0.9", 8080), server)
    call(("10.0.0.7", 8080), "")
    assert wire() == {("10.0.0.7:8080", 200): (3, False, 2),
                      ("10.0.0.9:8080", 200): (3, False, 2),
                      ("10.0.0.9:8080", 500): (1, True, 0)}
