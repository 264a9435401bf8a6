"""Errors a user causes and can fix. The CLI prints them as one line, without a stack trace."""


class N2DError(Exception):
    """Base of the user-facing errors; the message alone must say what to fix."""


class ConfigError(N2DError, ValueError):
    """A config key is unknown, mistyped or out of range; the message names it."""


class InputError(N2DError, ValueError):
    """The input cannot be used as the config describes; the message says what was found instead."""


class OutputExistsError(N2DError, FileExistsError):
    """The output exists and output.mode does not allow replacing it."""


class EnvironmentProblem(N2DError):
    """Something the job needs outside Python is missing (Java, for one)."""


class BundleError(N2DError):
    """A model bundle is missing, damaged, of another format version, or needs other library versions."""
