"""The Textual UI. The app gets every figure through a source object
(:mod:`meshtui.tui.source`), so tests and screenshots hand it other sources."""
