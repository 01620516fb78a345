"""One fine-tuning run and what surrounds it: the run's phases, cross-validation, pretraining, Hub push, card."""
