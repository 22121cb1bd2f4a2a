"""A scrolling feed that holds 100,000+ lines and draws only the visible ones.

Items go into a fixed-size ring (oldest dropped, counted); the widget is a
``ScrollView`` whose ``render_line`` formats just the rows on screen, with an
LRU cache of rendered strips. Appending never redraws: a timer applies what
arrived since the last frame, at most ``fps`` times a second. Follow mode
works like a log viewer: scrolling up stops following and counts what is
new; End follows again. Pausing freezes the view while intake continues.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Offset, Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

T = TypeVar("T")
Line = Text | list[tuple[str, str]]  # an item's line: Text, or (text, style name) parts


class Ring(Generic[T]):
    """A fixed-capacity ring addressed by ever-increasing sequence numbers."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self._items: list[T | None] = [None] * capacity
        # A small number beside each item (say, which of its steps a line shows):
        # kept apart so that an item and its tag need no object made to pair them.
        self._tags = bytearray(capacity)
        self.next_seq = 0  # sequence number the next item gets
        self.dropped = 0

    @property
    def first_seq(self) -> int:
        return max(0, self.next_seq - self.capacity)

    def __len__(self) -> int:
        return self.next_seq - self.first_seq

    def append(self, item: T) -> int:
        seq = self.next_seq
        if seq >= self.capacity:
            self.dropped += 1
        self._items[seq % self.capacity] = item
        self._tags[seq % self.capacity] = 0
        self.next_seq = seq + 1
        return seq

    def extend(self, items: list[T], tags: bytes | bytearray | None = None) -> range:
        """Appends many at once (slice copies, not a loop), with their tags (0 without);
        returns their sequence numbers."""
        cap = self.capacity
        end = self.next_seq + len(items)
        if tags is None:
            tags = bytes(len(items))
        elif len(tags) != len(items):
            raise ValueError(f"{len(tags)} tags for {len(items)} items")
        if len(items) > cap:  # only the newest fit: the others are dropped on arrival
            items, tags = items[-cap:], tags[-cap:]
        start = end - len(items)
        at = start % cap
        first = min(len(items), cap - at)
        self._items[at:at + first] = items[:first]
        self._tags[at:at + first] = tags[:first]
        if first < len(items):
            self._items[:len(items) - first] = items[first:]
            self._tags[:len(items) - first] = tags[first:]
        self.next_seq = end
        self.dropped = max(0, end - cap)
        return range(start, end)

    def tag(self, seq: int) -> int:
        """The tag of a held item (0 for one no longer held)."""
        if self.first_seq <= seq < self.next_seq:
            return self._tags[seq % self.capacity]
        return 0

    def get(self, seq: int) -> T | None:
        if self.first_seq <= seq < self.next_seq:
            return self._items[seq % self.capacity]
        return None

    def seqs(self) -> range:
        return range(self.first_seq, self.next_seq)

    def items(self, seqs: range) -> list[T]:
        """The items of consecutive ``seqs``, all still held (slice copies, not a loop)."""
        if not seqs:
            return []
        if seqs.start < self.first_seq or seqs.stop > self.next_seq:
            raise IndexError(f"{seqs} not all held ({self.first_seq}..{self.next_seq})")
        cap = self.capacity
        at, end = seqs.start % cap, seqs.start % cap + len(seqs)
        got = self._items[at:min(end, cap)] + self._items[:max(0, end - cap)]
        return got  # type: ignore[return-value]  # held slots are never None


class FeedView(ScrollView, Generic[T], can_focus=True):
    """A virtual list of items rendered one line each by ``render_item``."""

    BINDINGS = [
        Binding("end", "follow", "Follow", show=True),
        Binding("home", "scroll_home", "Top", show=False),
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("enter", "select", "Details"),
    ]

    DEFAULT_CSS = """
    FeedView {
        background: $surface;
        overflow-x: hidden;
    }
    FeedView > .feedview--cursor {
        background: $accent 40%;
    }
    """
    COMPONENT_CLASSES = {"feedview--cursor"}

    class Selected(Message):
        """Enter on a line."""

        def __init__(self, item: object) -> None:
            super().__init__()
            self.item = item

    def __init__(self, render_item: Callable[[T, int], Line], *, capacity: int = 100_000,
                 fps: float = 20.0, version: Callable[[T], object] | None = None,
                 name: str | None = None, id: str | None = None,
                 classes: str | None = None) -> None:
        """``render_item(item, tag)`` gives a line: a ``Text``, or (faster) a list of
        (text, style name) parts; the tag is the one the item was added with.
        ``version``, when given, tells when an item's lines must be drawn again
        (a line is cached until its version changes)."""
        super().__init__(name=name, id=id, classes=classes)
        self.render_item = render_item
        self.version = version
        self.ring: Ring[T] = Ring(capacity)
        self.fps = fps
        self.following = True
        self.paused = False
        self.pending = 0  # arrived while not following or paused
        self.frames = 0  # redraws done (for the benchmark's redraw-rate check)
        self.admitted = 0  # items that entered the view (passed the filter, not paused)
        self._filter: Callable[[T], bool] | None = None
        self._view: list[int] = []  # sequence numbers shown, in order
        self._applied = 0  # the first seq not yet applied by a frame
        self._cache: OrderedDict[tuple[int, int, Style, object], Strip] = OrderedDict()
        self._styles: dict[str, Style] = {}  # style name → on the widget's style
        self._styles_base: Style | None = None
        self._pass: tuple[Style, int, Offset] | None = None  # read once a rendering pass
        self.cursor: int | None = None  # index into the visible list
        self._end_pending = False

    # ---- intake ------------------------------------------------------------

    def add(self, items: Iterable[T], tags: bytes | bytearray | None = None) -> None:
        """Appends items (with a tag each, 0 without); they appear at the next frame.
        Never redraws by itself."""
        self.ring.extend(items if isinstance(items, list) else list(items), tags)

    def on_mount(self) -> None:
        self.set_interval(1 / self.fps, self._frame)

    def _frame(self) -> None:
        """Applies what arrived since the last frame; one refresh at most."""
        ring = self.ring
        arrived = ring.next_seq - self._applied
        # Sequence numbers are consecutive: what arrived is a range, of which
        # the ring may already have dropped the oldest.
        fresh = range(max(self._applied, ring.first_seq), ring.next_seq)
        self._applied = ring.next_seq
        if not arrived and not self._trim():
            return
        if self.paused:
            self.pending += arrived
            self._trim()
            return
        new = fresh if self._filter is None else self._passing(fresh)
        self._view.extend(new)
        self.admitted += len(new)
        if not self.following:
            self.pending += len(new)
        self._trim()
        self._sync(scroll_end=self.following)

    def _trim(self) -> bool:
        """Forgets shown seqs whose items the ring already dropped."""
        view = self._view
        n = bisect_left(view, self.ring.first_seq)  # shown seqs are in order
        if n:
            del view[:n]
            if self.cursor is not None:
                self.cursor = max(0, self.cursor - n)
            if not self.following:  # keep the same lines under the user's eyes
                self.scroll_to(y=max(0, self.scroll_offset.y - n), animate=False)
        return bool(n)

    def _passing(self, seqs: range) -> list[int]:
        """Those of ``seqs`` (all held) whose items pass the filter."""
        test = self._filter
        if test is None:
            return list(seqs)
        return [s for s, item in zip(seqs, self.ring.items(seqs), strict=True) if test(item)]

    def _sync(self, scroll_end: bool) -> None:
        width = max(self.size.width, 1)
        self.virtual_size = Size(width, len(self._view))
        if scroll_end:
            self.scroll_to(y=max(0, len(self._view) - self.size.height), animate=False)
            # Before the first layout the scroll range is still empty and the
            # scroll above is clamped to 0; a stream that has already ended brings
            # no later frame to correct it, so scroll again once laid out.
            self._end_after_refresh()
        self.frames += 1
        self.refresh()

    def _end_after_refresh(self, tries: int = 5) -> None:
        """Scrolls a following feed to its end after the next refresh (once, however
        often it is asked for before then)."""
        if not self._end_pending:
            self._end_pending = True
            self.call_after_refresh(self._settle_end, tries)

    def _settle_end(self, tries: int) -> None:
        self._end_pending = False
        if not self.following or self.paused:
            return
        if self.max_scroll_y > 0 and not self.allow_vertical_scroll and tries:
            # The scrollbars are not laid out for the new length yet, and until
            # they are Textual refuses to scroll: lay out, then try again (a feed
            # with nothing more arriving brings no later frame to do it).
            self.refresh(layout=True)
            self._end_after_refresh(tries - 1)
            return
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    def on_resize(self) -> None:
        # A new size (the first layout among them) moves the end: a following
        # feed keeps showing it, even when no more items will arrive.
        self._end_after_refresh()

    # ---- filtering and modes ----------------------------------------------

    def set_filter(self, predicate: Callable[[T], bool] | None) -> None:
        """Shows only matching items (everything with None); rescans the ring once."""
        self._filter = predicate
        self._view = self._passing(self.ring.seqs())
        self._applied = self.ring.next_seq
        self._cache.clear()
        self.cursor = None
        self._sync(scroll_end=True)
        self.following = True
        self.pending = 0

    def toggle_pause(self) -> None:
        self.paused = not self.paused
        if not self.paused:
            self.pending = 0
            self.set_filter(self._filter)

    def action_follow(self) -> None:
        self.following = True
        self.pending = 0
        self.cursor = None
        self._sync(scroll_end=True)

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        at_end = new >= self.max_scroll_y - 0.5
        if new < old and not at_end:
            self.following = False
        elif at_end and self.cursor is None:
            if not self.following:
                self.pending = 0
            self.following = True

    # ---- cursor ------------------------------------------------------------

    def action_cursor_up(self) -> None:
        if not self._view:
            return
        if self.cursor is None:
            self.cursor = len(self._view) - 1
        self.cursor = max(0, self.cursor - 1)
        self.following = False
        self.scroll_to_region_of_cursor()

    def action_cursor_down(self) -> None:
        if self.cursor is None:
            return
        self.cursor = min(len(self._view) - 1, self.cursor + 1)
        self.scroll_to_region_of_cursor()

    def action_page_up(self) -> None:
        self.following = False
        self.scroll_page_up(animate=False)

    def action_page_down(self) -> None:
        self.scroll_page_down(animate=False)

    def scroll_to_region_of_cursor(self) -> None:
        if self.cursor is None:
            return
        y = self.scroll_offset.y
        h = self.size.height
        if self.cursor < y:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= y + h:
            self.scroll_to(y=self.cursor - h + 1, animate=False)
        self.refresh()

    @property
    def selected(self) -> T | None:
        if self.cursor is None or not 0 <= self.cursor < len(self._view):
            return None
        return self.ring.get(self._view[self.cursor])

    def action_select(self) -> None:
        item = self.selected
        if item is not None:
            self.post_message(self.Selected(item))

    # ---- drawing -----------------------------------------------------------

    def render_lines(self, crop: Region) -> list[Strip]:
        # Read once a pass, not once a line: each of these walks the DOM or the
        # reactive machinery, and a feed at full speed redraws every line each frame.
        self._pass = (self.rich_style, self.size.width, self.scroll_offset)
        try:
            return super().render_lines(crop)
        finally:
            self._pass = None

    def render_line(self, y: int) -> Strip:
        base, width, (scroll_x, scroll_y) = self._pass or (
            self.rich_style, self.size.width, self.scroll_offset)
        index = scroll_y + y
        if index >= len(self._view):
            return Strip.blank(width, base)
        seq = self._view[index]
        cursor = index == self.cursor
        item = self.ring.get(seq)
        key = (seq, width, base,
               None if self.version is None or item is None else self.version(item))
        strip = None if cursor else self._cache.get(key)
        if strip is None:
            strip = self._line(item, self.ring.tag(seq), base)
            if scroll_x:
                strip = strip.crop(scroll_x, scroll_x + width)
            strip = strip.adjust_cell_length(width, base)
            if cursor:
                style: Style = self.get_component_rich_style("feedview--cursor")
                strip = Strip(Segment.apply_style(strip, post_style=style), width)
            else:
                self._cache[key] = strip
                if len(self._cache) > 2000:
                    self._cache.popitem(last=False)
        return strip

    def _line(self, item: T | None, tag: int, base: Style) -> Strip:
        """An item's line on the widget's own style, as long as it is."""
        parts = self.render_item(item, tag) if item is not None else []
        if isinstance(parts, Text):
            parts.no_wrap = True
            segments = [Segment(s.text, base + s.style if s.style else base)
                        for s in parts.render(self.app.console, end="")]
            return Strip(segments)
        if base != self._styles_base:
            self._styles.clear()
            self._styles_base = base
        styles = self._styles
        segments = []
        length = 0
        for text, name in parts:
            style = styles.get(name)
            if style is None:
                style = styles[name] = base + Style.parse(name) if name else base
            segments.append(Segment(text, style))
            length += cell_len(text)
        return Strip(segments, length)

    @property
    def shown(self) -> int:
        return len(self._view)

    def shown_items(self) -> list[tuple[T, int]]:
        """What the view shows (what the filter passes, or all held), oldest first,
        each with its tag."""
        ring = self.ring
        return [(item, ring.tag(s)) for s in self._view
                if (item := ring.get(s)) is not None]
