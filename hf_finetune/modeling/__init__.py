"""Checkpoints: load them safely, give them a head, find their blocks, wrap them with adapters, pool features."""
