"""The package version, in one place: `hf_finetune.__version__`, `hf-finetune --version`, the wheel's metadata
(pyproject reads it) and the model card's framework versions. Its own module so any layer may import it."""

VERSION = "0.1.0"
