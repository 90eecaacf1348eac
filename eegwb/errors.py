"""The one error type that means "your input is wrong", and its file-system variants.

Every error eegwb raises about what a user gave it (a config value, a dataset, a
checkpoint, a splits file, an output that already exists, a leaky split) derives from
`InputError`. The commands and notebooks report those in one line and exit 2; any other
exception is a bug and surfaces as one (a traceback, exit 1), so a shape error deep in
the model is never blamed on the user.

`InputError` is a `ValueError`, so code that caught `ValueError` before still does.
"""

from __future__ import annotations


class InputError(ValueError):
    """Bad input: the message names the file, key or value and what is wrong with it."""


class MissingInputError(InputError, FileNotFoundError):
    """A file or folder the input names does not exist (also a `FileNotFoundError`)."""


class OutputExistsError(InputError, FileExistsError):
    """Raised instead of silently overwriting an existing output (also a `FileExistsError`)."""
