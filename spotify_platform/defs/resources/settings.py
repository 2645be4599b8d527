"""Resource settings from the environment, as EnvVars: resolved at run time, never logged."""

import os

from dagster import EnvVar


def env_or(name: str, default: object = None) -> object:
    """An EnvVar when the variable is set, else `default`."""
    return EnvVar(name) if os.environ.get(name) else default


def env_int_or(name: str, default: int) -> object:
    return EnvVar.int(name) if os.environ.get(name) else default
