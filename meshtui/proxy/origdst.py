"""Where a connection was going before iptables redirected it to the proxy.

An iptables ``REDIRECT`` (the NAT rules ``meshtui proxy-init`` installs)
rewrites the destination of a connection to the proxy's listener; the kernel's
connection tracking remembers the original one, and ``getsockopt`` with
``SO_ORIGINAL_DST`` (``IP6T_SO_ORIGINAL_DST`` for IPv6) reads it back.
"""

from __future__ import annotations

import socket
import struct
from typing import Any

SO_ORIGINAL_DST = 80  # linux/netfilter_ipv4.h
IP6T_SO_ORIGINAL_DST = 80  # linux/netfilter_ipv6/ip6_tables.h
SOL_IPV6 = getattr(socket, "SOL_IPV6", 41)


def original_dst(sock: Any) -> tuple[str, int] | None:
    """The original destination of an accepted, redirected connection.

    Returns None when the connection was not redirected (no conntrack entry,
    or the original destination is the socket's own address) or the platform
    cannot tell.

    Args:
        sock: the accepted socket (or uvloop's socket-like stand-in).
    """
    try:
        local = sock.getsockname()
        if sock.family == socket.AF_INET6:
            raw = sock.getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST, 28)
            # struct sockaddr_in6: family, port (big-endian), flowinfo, addr[16], scope
            port = struct.unpack_from("!H", raw, 2)[0]
            host = socket.inet_ntop(socket.AF_INET6, raw[8:24])
            if host.startswith("::ffff:") and "." in host:
                host = host[7:]
        else:
            raw = sock.getsockopt(socket.SOL_IP, SO_ORIGINAL_DST, 16)
            # struct sockaddr_in: family, port (big-endian), addr[4], zero[8]
            port = struct.unpack_from("!H", raw, 2)[0]
            host = socket.inet_ntoa(raw[4:8])
    except (OSError, AttributeError, struct.error, ValueError):
        return None
    if (host, port) == (local[0], local[1]):
        return None
    return host, port
