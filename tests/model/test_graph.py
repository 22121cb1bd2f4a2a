"""The call graph's layout: layers, box places and arrow paths, without a terminal."""

from __future__ import annotations

from meshtui.model.graph import BOX_HEIGHT, cells, layers, layout

EMOJIVOTO = [("vote-bot", "vote-bot"), ("web", "web"), ("emoji", "emoji"),
             ("voting", "voting")]
CALLS = [("vote-bot", "web"), ("web", "emoji"), ("web", "voting")]


def test_callers_sit_left_of_what_they_call() -> None:
    assert layers([k for k, _ in EMOJIVOTO], CALLS) == {
        "vote-bot": 0, "web": 1, "emoji": 2, "voting": 2}
    # A workload is right of its furthest caller, not its nearest.
    assert layers(list("abc"), [("a", "b"), ("b", "c"), ("a", "c")]) == {"a": 0, "b": 1, "c": 2}


def test_a_cycle_still_lays_out_in_order() -> None:
    got = layers(list("abc"), [("a", "b"), ("b", "c"), ("c", "a")])
    assert got == {"a": 0, "b": 1, "c": 2}
    lay = layout([(k, k) for k in "abc"], [("a", "b"), ("b", "c"), ("c", "a")])
    back = next(r for r in lay.routes if r.src == "c")
    # The call back runs below the boxes and enters "a" from its left.
    assert back.points[-1] == (lay.box("a").x - 1, lay.box("a").mid_y)  # type: ignore[union-attr]
    assert max(y for _, y in back.points) >= BOX_HEIGHT


def test_boxes_do_not_overlap_and_fit_their_names() -> None:
    lay = layout(EMOJIVOTO, CALLS)
    for b in lay.boxes:
        assert b.width >= len(b.label) + 4
        assert b.x + b.width <= lay.width and b.y + BOX_HEIGHT <= lay.height
    for a in lay.boxes:
        for b in lay.boxes:
            if a is not b:
                assert not any(a.contains(x, y) for x in range(b.x, b.x + b.width)
                               for y in range(b.y, b.y + BOX_HEIGHT))
    emoji, voting = lay.box("emoji"), lay.box("voting")
    assert emoji is not None and voting is not None and emoji.x == voting.x
    assert lay.box_at(emoji.x + 1, emoji.mid_y) == emoji
    assert lay.box_at(emoji.x - 1, emoji.mid_y) is None


def test_each_arrow_runs_from_caller_to_callee_and_crosses_no_box() -> None:
    lay = layout(EMOJIVOTO, CALLS)
    assert [(r.src, r.dst) for r in lay.routes] == CALLS
    for r in lay.routes:
        src, dst = lay.box(r.src), lay.box(r.dst)
        assert src is not None and dst is not None
        assert r.points[0] == (src.x + src.width, src.mid_y)
        drawn = cells(r)
        head = [(x, y) for x, y, c in drawn if c == "▶"]
        assert head == [(dst.x - 1, dst.mid_y)]
        assert all(lay.box_at(x, y) is None for x, y, _ in drawn)
        # A connected path: every cell but the ends touches two others.
        spots = {(x, y) for x, y, _ in drawn}
        for x, y in spots - {r.points[0], r.points[-1]}:
            assert sum((x + dx, y + dy) in spots
                       for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1))) == 2


def test_an_empty_namespace_has_an_empty_layout() -> None:
    lay = layout([], [])
    assert (lay.boxes, lay.routes, lay.width, lay.height) == ((), (), 0, 0)


def test_a_call_back_to_an_earlier_layer_is_drawn_whole_on_the_grid() -> None:
    """web → voting and voting → web: the call back runs right of voting, below both
    boxes and into web from the left, every cell of it inside the layout."""
    lay = layout([("web", "web"), ("voting", "voting")], [("web", "voting"), ("voting", "web")])
    back = next(r for r in lay.routes if r.src == "voting")
    drawn = cells(back)
    assert all(0 <= x <= lay.width and 0 <= y <= lay.height for x, y, _ in drawn)
    web = lay.box("web")
    assert web is not None and (web.x - 1, web.mid_y, "▶") in drawn
