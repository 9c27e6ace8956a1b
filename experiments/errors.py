"""User-facing errors: the entry point prints these as one line and exits non-zero."""


class StarbenchError(Exception):
    """Bad input or environment (missing dataset, foreign checkpoint, ...): message says what to do."""


class Interrupted(StarbenchError):
    """The run was stopped (SIGTERM, Ctrl-C) after saving a checkpoint; the same command resumes it.
    ``exit_code`` follows the shell's convention: 128 + the signal number."""

    def __init__(self, message: str, exit_code: int = 143):
        super().__init__(message)
        self.exit_code = exit_code
