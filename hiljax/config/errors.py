"""The configuration error and the one-line check every config's __post_init__ is a list of."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration file or override that cannot be used as written."""


def require(condition: bool, message: str) -> None:
    """Raise ConfigError(message) unless `condition`: every config's checks read as a list."""
    if not condition:
        raise ConfigError(message)
