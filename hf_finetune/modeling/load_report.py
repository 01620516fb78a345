"""What to say after `from_pretrained`: only what a user must act on.

transformers 5 prints a LOAD REPORT table of every difference between a checkpoint and the model
built from it. Putting a task head on a pretrained encoder makes every difference expected: the
new head is MISSING, the checkpoint's pretraining head or pooler is UNEXPECTED. Users read that
table as "the model is broken". So the table is silenced while we load, and the differences are
sorted here:

- weights of the new head (missing or resized) -> one info line, by the caller (`newly initialised`);
- checkpoint weights the task class does not use (a pooler, a masked-LM head) -> one info line;
- missing or resized weights *inside the base model* -> a warning naming them: pretrained weights
  that start random (a checkpoint of another architecture, a truncated file) are a real problem.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager

logger = logging.getLogger(__name__)


@contextmanager
def quiet_transformers_loading():
    """transformers at error level for the duration (its LOAD REPORT is a warning); restored after."""
    import transformers

    verbosity = transformers.logging.get_verbosity()
    transformers.logging.set_verbosity_error()
    try:
        yield
    finally:
        transformers.logging.set_verbosity(verbosity)


def report_loading(model, info: dict) -> None:
    """Log the differences `from_pretrained(..., output_loading_info=True)` found that are not the new head."""
    prefix = f"{model.base_model_prefix}." if model.base_model is not model else ""
    missing = [k for k in info.get("missing_keys", []) if k.startswith(prefix)]
    resized = [k for k, *_ in info.get("mismatched_keys", []) if k.startswith(prefix)]
    if prefix and (missing or resized):
        names = sorted(missing + resized)
        logger.warning(
            "%d pretrained weight(s) of the base model are not in the checkpoint (or have another shape) and start "
            "random: %s%s; is the checkpoint of this architecture?",
            len(names),
            ", ".join(names[:5]),
            " ..." if len(names) > 5 else "",
        )
    unused = sorted(info.get("unexpected_keys", []))
    if unused:
        logger.info(
            "%d checkpoint weight(s) not used by %s (its pretraining head or pooler): %s%s",
            len(unused),
            type(model).__name__,
            ", ".join(unused[:3]),
            " ..." if len(unused) > 3 else "",
        )
