"""What tap withholds: names, globs, query parameters, userinfo, user additions."""

from __future__ import annotations

import pytest

from meshtui.model.redact import DEFAULT, REDACTED, Redactor, parse_names


@pytest.mark.parametrize("name", [
    "Authorization", "proxy-authorization", "Cookie", "set-cookie", "X-Api-Key", "x_api_key",
    "api_key", "apikey", "X-Auth-Token", "access_token", "id_token", "X-CSRF-Token",
    "client_secret", "password", "db-passwd", "JSESSIONID", "x-session-id",
    "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Security-Token", "private-token", "sig",
    b"X-Api-Key", b"authorization",
])
def test_credentials_are_secret(name: str | bytes) -> None:
    assert DEFAULT.secret(name)


@pytest.mark.parametrize("name", [
    "author", "authority", "monkey", "keyboard", "idempotency-key", "keep-alive", "host",
    "content-type", "user-agent", "accept", "x-request-id", "id", "page", "passenger",
    "bypass", b"author",
])
def test_ordinary_names_are_not(name: str | bytes) -> None:
    assert not DEFAULT.secret(name)


def test_query_values_of_secret_names_are_redacted_and_the_rest_kept() -> None:
    r = DEFAULT
    assert r.path("/x?token=abc&id=3") == f"/x?token={REDACTED}&id=3"
    assert r.path("/x?id=3&author=ann") == "/x?id=3&author=ann"
    assert r.path("/x") == "/x"
    # Percent-encoded and plus-spaced names are judged as decoded; a bare flag is kept.
    assert r.path("/x?api%5Fkey=1&secret&a=1#frag") == f"/x?api%5Fkey={REDACTED}&secret&a=1#frag"
    assert r.path("/x?Access_Token=1&access_token=2") == (
        f"/x?Access_Token={REDACTED}&access_token={REDACTED}")
    # An absolute-form target's userinfo goes too.
    assert r.path("http://u:p@h:80/x?password=1") == (
        f"http://{REDACTED}@h:80/x?password={REDACTED}")


def test_userinfo_of_an_authority_is_redacted() -> None:
    assert DEFAULT.authority("alice:pw@svc:80") == f"{REDACTED}@svc:80"
    assert DEFAULT.authority("svc:80") == "svc:80"


def test_headers_come_back_unchanged_when_nothing_is_secret() -> None:
    plain = (("host", "a"), ("accept", "*/*"))
    assert DEFAULT.headers(plain, REDACTED) is plain
    mixed = ((b"X-Api-Key", b"k"), (b"accept", b"*/*"))
    assert DEFAULT.headers(mixed, b"<r>") == ((b"X-Api-Key", b"<r>"), (b"accept", b"*/*"))


def test_user_names_and_globs_add_to_the_defaults() -> None:
    r = Redactor(parse_names(" X-Tenant, *pin* ,,"))
    assert r.secret("x-tenant") and r.secret("X_TENANT") and r.secret("card-pin-code")
    assert r.secret("authorization")  # the defaults stay
    assert not DEFAULT.secret("x-tenant")
    assert r.path("/p?pin=1&x_tenant=2&q=3") == f"/p?pin={REDACTED}&x_tenant={REDACTED}&q=3"


@pytest.mark.parametrize("bad", ["x tenant", "a=b", "\x1b[2J", "naïve"])
def test_names_that_cannot_be_header_names_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="--redact"):
        parse_names(bad)


def test_the_decision_cache_stays_bounded() -> None:
    r = Redactor()
    for i in range(20_000):
        r.secret(f"x-{i}")
    assert len(r._cache) <= 4096


def test_a_query_judged_once_keeps_each_paths_own_prefix() -> None:
    r = Redactor()
    for path in ("/a?token=1&page=2#f", "/b/c?token=1&page=2#f", "/d?token=1&page=2#f"):
        prefix = path[:path.index("?")]
        assert r.path(path) == f"{prefix}?token=<redacted>&page=2#f"
    assert r.path("/e?page=2") == "/e?page=2" and r.path("/f?page=2") == "/f?page=2"
    assert r.path("http://u:p@h/x?token=1") == "http://<redacted>@h/x?token=<redacted>"


def test_url_headers_lose_their_secret_query_values_and_userinfo() -> None:
    """A redirect's Location (or a Referer) carries the same tokens a path does."""
    r = DEFAULT
    loc = "https://app/cb?code=1&access_token=t0k&state=x"
    assert r.value("Location", loc, REDACTED) == (
        f"https://app/cb?code=1&access_token={REDACTED}&state=x")
    assert r.value(b"referer", b"http://a:b@h/p?sig=9", b"<r>") == (
        f"http://{REDACTED}@h/p?sig={REDACTED}".encode())
    assert r.value("x-note", "/p?token=1", REDACTED) == "/p?token=1"  # not a URL header
    hs = (("content-location", "/d?password=2"), ("accept", "*/*"))
    assert r.headers(hs, REDACTED) == (("content-location", f"/d?password={REDACTED}"),
                                       ("accept", "*/*"))


def test_a_url_headers_fragment_and_scheme_relative_userinfo_are_judged_too() -> None:
    r = DEFAULT
    assert r.value("Location", "https://app/cb#access_token=S&state=xyz",
                   REDACTED) == f"https://app/cb#access_token={REDACTED}&state=xyz"
    assert r.value("location", "https://app/cb?x=1#id_token=S", REDACTED) == (
        f"https://app/cb?x=1#id_token={REDACTED}")
    assert r.value("referer", "//u:pw@host/x", REDACTED) == f"//{REDACTED}@host/x"
    assert r.value("location", "/page#section-2", REDACTED) == "/page#section-2"
    assert r.value(b"location", b"/cb#token=S", b"<r>") == f"/cb#token={REDACTED}".encode()
