"""User-facing errors: the entry point prints these as one line and exits non-zero."""


class StarbenchError(Exception):
    """Bad input or environment (missing dataset, foreign checkpoint, ...): message says what to do."""


class Interrupted(StarbenchError):
    """The run was stopped (SIGTERM) after saving a checkpoint; the same command resumes it."""
