"""Settings objects: one frozen dataclass per long parameter list, keyword overrides on top.

A function with many options takes ``settings`` (built once from the config section,
e.g. by the dataclass's ``from_config``) and still accepts the options one by one as
keywords, so a call that names two of them does not need to build the object first.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

Settings = TypeVar("Settings")


def with_overrides(settings: Settings | None, settings_type: type[Settings], overrides: dict) -> Settings:
    """`settings` (the defaults of `settings_type` when None) with the fields of `overrides` replaced.

    Parameters
    ----------
    settings : dataclass instance or None
    settings_type : dataclass type
        The type of `settings`; its defaults stand in for a missing `settings`.
    overrides : dict
        Field name -> value; an unknown name raises :class:`TypeError` (a caller's
        mistake, not a user's).

    Returns
    -------
    dataclass instance of `settings_type`
    """
    base = settings if settings is not None else settings_type()
    return dataclasses.replace(base, **overrides) if overrides else base
