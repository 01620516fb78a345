"""Benchmark harness: our training pipeline against the plain `transformers.Trainer` set-ups users would
otherwise run, on the same data, checkpoint, epochs and seed (`make bench`; `python -m bench.run --help`)."""
