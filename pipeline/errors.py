"""Errors that mean "the input is wrong", reported to users as one line (the CLI exits with code 2)."""

from __future__ import annotations

__all__ = ["InputError", "DatasetError", "SettingsError", "CheckpointError"]


class InputError(ValueError):
    """Base of the errors caused by what the user gave: the message names the value or file and what is expected."""


class DatasetError(InputError):
    """A dataset folder, datalist or image/label pair that cannot be used, with the file named in the message."""


class SettingsError(InputError):
    """A setting out of range or not one of the valid choices."""


class CheckpointError(InputError):
    """A checkpoint that is missing, unsafe to load, or does not fit the network."""
