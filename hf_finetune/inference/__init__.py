"""Use a finished model: predict and evaluate from a model folder."""
