"""The Trainer the plug-ins build on: strategy hooks, safe stops, trustworthy checkpoints."""
