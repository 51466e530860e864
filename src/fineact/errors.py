"""The project's own error types.

Every mistake a user can make (a bad file, a bad key, a bad clip) raises one of these with a message that
names the file/line/key, what was expected and what was found. The CLI prints the message and exits with
status 2 instead of a traceback, so user errors and bugs stay distinguishable.
"""


class FineactError(Exception):
    """Base class of every error fineact raises for bad user input."""


class ConfigError(FineactError):
    """A config file or override is invalid (unknown key, wrong type, impossible value)."""


class ModelError(FineactError):
    """A model cannot be built or called as asked (unknown name, wrong clip shape, bad argument)."""


class WeightsError(FineactError):
    """A weights file does not fit the model (missing/unexpected keys, shapes, unreadable file)."""


class AnnotationError(FineactError):
    """An annotation, label or category file is malformed or inconsistent."""


class VideoError(FineactError):
    """A video or frame folder cannot be read (missing, corrupt, empty, too short)."""


class OutputError(FineactError):
    """An output cannot be written: the disk is full, permission is denied, a file is where a folder is needed."""
