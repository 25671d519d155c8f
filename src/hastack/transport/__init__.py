"""Transports: how hastack reaches hosts (ssh, local, fake), and many hosts at once (fleet)."""

from hastack.transport.base import (
    CommandError,
    CommandTimeout,
    HostError,
    HostUnreachable,
    Result,
    Transport,
    TransportError,
)
from hastack.transport.fleet import Fleet, Outcome, PerHost, Unreachable, run_all, unreachable

__all__ = [
    "CommandError",
    "CommandTimeout",
    "Fleet",
    "HostError",
    "HostUnreachable",
    "Outcome",
    "PerHost",
    "Result",
    "Transport",
    "TransportError",
    "Unreachable",
    "run_all",
    "unreachable",
]
