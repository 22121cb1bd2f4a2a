from hypothesis import given
from hypothesis import strategies as st

from meshtui.model.sanitize import clean, clean_bytes


def test_escape_sequences_become_visible_text() -> None:
    assert clean("/api\x1b[2J") == "/api\\x1b[2J"
    assert clean("a\x9bb\x00c\x7f") == "a\\x9bb\\x00c\\x7f"
    assert clean("tab\there") == "tab\\there"
    assert clean("plain/path?q=[bold]") == "plain/path?q=[bold]"


def test_bytes_that_are_not_utf8_are_shown_not_dropped() -> None:
    assert clean_bytes(b"ok\xff\x1b") == "ok\\xff\\x1b"


@given(st.text())
def test_cleaned_text_has_no_control_characters(s: str) -> None:
    out = clean(s)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in out)


@given(st.text(alphabet=st.characters(min_codepoint=0x20, exclude_characters="\\",
                                      exclude_categories=("Cc", "Cs"))))
def test_ordinary_text_is_left_alone(s: str) -> None:
    assert clean(s) == s
