"""The Textual UI. The app gets every figure through a source object
(:mod:`meshtui.client.source`), so tests and screenshots hand it other sources."""
