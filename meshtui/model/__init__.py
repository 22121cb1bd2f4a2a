"""The pure core of meshtui: selectors, histograms, windows, tap matching, routes.

Nothing here imports textual, grpc or rich (tests/model/test_purity.py checks),
so it is tested without a terminal or a network and reused by every part.
"""
