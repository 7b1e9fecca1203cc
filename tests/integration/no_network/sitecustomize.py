"""No-network guard: refuse, and record, every socket connect to an address other than loopback.

Put this folder on PYTHONPATH and set AXON_NET_GUARD_LOG to a file: every Python process that
starts with that environment (the test's subprocesses, Dask's worker processes, Checkov) imports
this module at start-up (`site` imports `sitecustomize`), and from then on

- `socket.socket.connect` / `connect_ex` (which asyncio, tornado, requests and urllib3 all end
  in) and `socket.create_connection` refuse any address that is not loopback (127.0.0.0/8, ::1,
  `localhost`) or a Unix socket, as an offline machine would (ENETUNREACH), and
- append one JSON line per refused connect to AXON_NET_GUARD_LOG: pid, argv, address.

AXON_NET_GUARD_LOADED, when set, gets one JSON line per process that loaded the guard, so a test
can check that the processes it cares about were covered. Go binaries (Trivy) do not run Python:
this guard does not see them (the scanners get a proxy on a closed local port instead).
"""

from __future__ import annotations

import errno
import ipaddress
import json
import os
import socket
import sys
from typing import Any

LOG_ENV = "AXON_NET_GUARD_LOG"
LOADED_ENV = "AXON_NET_GUARD_LOADED"
_ORIGINAL: dict[str, Any] = {}


def is_local(address: Any) -> bool:
    """True for a Unix socket path or a loopback host."""
    if not isinstance(address, tuple):
        return True  # AF_UNIX path (str or bytes)
    host = str(address[0]).split("%", 1)[0]
    if host.lower() == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name to resolve: that is a DNS query already
    mapped = getattr(ip, "ipv4_mapped", None)
    return bool(ip.is_loopback or (mapped is not None and mapped.is_loopback))


def _append(env: str, row: dict[str, Any]) -> None:
    path = os.environ.get(env)
    if not path:
        return
    line = json.dumps(row) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, line.encode())  # one write of a short line: atomic with O_APPEND
    finally:
        os.close(fd)


def _refuse(address: Any) -> OSError:
    _append(
        LOG_ENV,
        {
            "pid": os.getpid(),
            "argv": [a[:200] for a in sys.orig_argv[:4]],
            "address": repr(address),
        },
    )
    return OSError(errno.ENETUNREACH, f"no-network guard: connect to {address!r} refused")


def _connect(self: socket.socket, address: Any) -> None:
    if not is_local(address):
        raise _refuse(address)
    _ORIGINAL["connect"](self, address)


def _connect_ex(self: socket.socket, address: Any) -> int:
    if not is_local(address):
        _refuse(address)
        return errno.ENETUNREACH
    return int(_ORIGINAL["connect_ex"](self, address))


def _create_connection(address: Any, *args: Any, **kwargs: Any) -> socket.socket:
    if not is_local(address):
        raise _refuse(address)
    return _ORIGINAL["create_connection"](address, *args, **kwargs)  # type: ignore[no-any-return]


def install() -> None:
    """Wrap the socket functions in this process (idempotent)."""
    if _ORIGINAL:
        return
    _ORIGINAL.update(
        connect=socket.socket.connect,
        connect_ex=socket.socket.connect_ex,
        create_connection=socket.create_connection,
    )
    socket.socket.connect = _connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _connect_ex  # type: ignore[method-assign]
    socket.create_connection = _create_connection  # type: ignore[assignment]
    _append(LOADED_ENV, {"pid": os.getpid(), "argv": [a[:200] for a in sys.orig_argv[:4]]})


def uninstall() -> None:
    """Put the original socket functions back (for the test process that installed it)."""
    if not _ORIGINAL:
        return
    socket.socket.connect = _ORIGINAL["connect"]  # type: ignore[method-assign]
    socket.socket.connect_ex = _ORIGINAL["connect_ex"]  # type: ignore[method-assign]
    socket.create_connection = _ORIGINAL["create_connection"]
    _ORIGINAL.clear()


if os.environ.get(LOG_ENV):
    install()
