"""Scores and what a run shows of them: metrics, plots, files of mistakes."""
