"""Locust's names, backed by `wasmload`, so a locustfile needs no change to its imports.

Only what `wasmload` implements is here; anything else fails at `runner build` with an
ImportError that names it.
"""

from wasmload import (
    HttpUser,
    RescheduleTask,
    ResponseError,
    User,
    between,
    constant,
    constant_pacing,
    constant_throughput,
    task,
)

FastHttpUser = HttpUser

__all__ = [
    "FastHttpUser",
    "HttpUser",
    "RescheduleTask",
    "ResponseError",
    "User",
    "between",
    "constant",
    "constant_pacing",
    "constant_throughput",
    "task",
]
