"""Servers the promoter starts bind to this machine only, unless a person puts a proxy in front."""

from __future__ import annotations

import ipaddress
import socket

from promoter.errors import PromoterError


def loopback(host: str, hint: str) -> str:
    """The loopback address `host` names; `PromoterError` with `hint` when it is anything else."""
    try:
        address = socket.gethostbyname(host)
        if ipaddress.ip_address(address).is_loopback:
            return address
    except (OSError, ValueError):
        pass
    raise PromoterError(f"--host {host!r} is not a loopback address: {hint}")
