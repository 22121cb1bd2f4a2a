from hypothesis import given
from hypothesis import strategies as st

from meshtui.model.sanitize import clean, clean_bytes, clean_http

BIDI = "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"


def test_escape_sequences_become_visible_text() -> None:
    assert clean("/api\x1b[2J") == "/api\\x1b[2J"
    assert clean("a\x9bb\x00c\x7f") == "a\\u009bb\\x00c\\x7f"
    assert clean("tab\there") == "tab\\there"
    assert clean("plain/path?q=[bold]") == "plain/path?q=[bold]"


def test_bidirectional_controls_become_visible_text() -> None:
    assert clean("/\u202enimda") == "/\\u202enimda"
    assert clean("a\u2066b\u2069c\u200f") == "a\\u2066b\\u2069c\\u200f"


def test_text_carried_one_byte_a_character_is_read_as_utf8() -> None:
    sent = "web\u202eexampleÿ".encode() + b"\xff"  # UTF-8, then a byte that is not
    carried = sent.decode("latin-1")  # as the proxy hands it on
    assert clean_http(carried) == "web\\u202eexampleÿ\\xff"
    assert clean_http("café") == "caf\\xe9"  # one byte, not UTF-8: shown as that byte
    assert clean_http("naïve\u0101") == "naïve\u0101"  # past U+00FF: not carried so


def test_bytes_that_are_not_utf8_are_shown_not_dropped() -> None:
    assert clean_bytes(b"ok\xff\x1b") == "ok\\xff\\x1b"


@given(st.text())
def test_cleaned_text_has_no_control_characters(s: str) -> None:
    out = clean(s)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F or c in BIDI for c in out)


@given(st.text(alphabet=st.characters(min_codepoint=0x20, exclude_characters="\\" + BIDI,
                                      exclude_categories=("Cc", "Cs"))))
def test_ordinary_text_is_left_alone(s: str) -> None:
    assert clean(s) == s


def test_what_clean_shows_reads_back_as_the_original() -> None:
    """raw_text undoes clean for any text; raw_bytes undoes clean_bytes for any bytes."""
    import random

    from meshtui.model.sanitize import clean_bytes, raw_bytes, raw_text

    rng = random.Random(7)
    alphabet = "ab\\x\t\n\r\x00\x1b\x7f\x85\x9f\u061c\u202e\u2066é漢"
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        assert raw_text(clean(text)) == text
        raw = bytes(rng.choice(b"ab\\\x1b\xc3\xa9\xff\x80\xc2\x85\x93")
                    for _ in range(rng.randint(0, 12)))
        assert raw_bytes(clean_bytes(raw)) == raw
