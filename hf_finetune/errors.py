"""The one error type users see.

Anything the user can fix (a path, a column name, a recipe key) raises `UserError`.
The CLI prints it as a single line and exits with code 2, with no traceback, so a
typo costs seconds rather than a scroll through a stack dump. Bugs in the suite
stay ordinary exceptions with full tracebacks.
"""

EXIT_OK = 0
EXIT_BAD_INPUT = 2
EXIT_DIVERGED = 3


class UserError(Exception):
    """Bad input: printed as one line, exit code 2."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str):
        # Keep it on one line even when a library message we wrap spans several.
        super().__init__(" ".join(str(message).split()))


class TrainingDiverged(UserError):
    """The loss became NaN or inf: the run stops with exit code 3 instead of training on garbage."""

    exit_code = EXIT_DIVERGED


class CheckpointNotSaved(UserError):
    """A checkpoint could not be written (disk full, quota): the previous complete one stays usable."""


def first_line(exc: BaseException) -> str:
    """The informative part of a library exception, for wrapping in a UserError: its text on one line,
    at most 300 characters (a message like "... but found" continues on the next lines)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
