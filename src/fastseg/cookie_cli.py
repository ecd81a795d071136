"""``fastseg cookie encode|check``: one Linux SYN cookie from the command line.

The main CLI calls :func:`register` with its subparsers; the subcommand's
function is :func:`run_cookie` (returns the exit status: 0 ok, 1 cookie
invalid, 2 bad arguments).
"""
from __future__ import annotations

import ipaddress
import sys
import time

from . import syncookies

__all__ = ["register", "run_cookie"]


def register(subparsers):
    """Add the ``cookie`` subcommand to an argparse subparsers object."""
    p = subparsers.add_parser(
        "cookie", help="encode or check one Linux SYN cookie",
        description="Compute the SYN cookie a Linux server sends for a SYN "
                    "(encode), or verify a client's final ACK against it (check). "
                    "Numbers accept decimal or 0x-hex.")
    # Values are checked by run_cookie, not argparse, so that every bad
    # argument gives one line and exit status 2.
    p.add_argument("action", metavar="{encode,check}",
                   help="encode: the cookie for a SYN; check: verify a final ACK")
    p.add_argument("--secret", help="the 32-byte secret as 64 hex digits (two SipHash keys)")
    p.add_argument("--saddr", help="client address (SYN source)")
    p.add_argument("--daddr", help="server address (SYN destination)")
    p.add_argument("--sport", help="client port")
    p.add_argument("--dport", help="server port")
    p.add_argument("--isn", help="encode: the SYN's sequence number")
    p.add_argument("--mss", default="536", help="encode: the SYN's MSS option (default 536)")
    p.add_argument("--seq", help="check: the ACK's sequence number (ISN + 1)")
    p.add_argument("--ack", help="check: the ACK's acknowledgment number (cookie + 1)")
    p.add_argument("--count", help="minute counter (default: from --time)")
    p.add_argument("--time", dest="seconds",
                   help="seconds on the host's cookie clock (default: now)")
    p.set_defaults(func=run_cookie)
    return p


class _BadArgument(ValueError):
    pass


def _number(text, name, limit):
    if text is None:
        raise _BadArgument(f"--{name} is required")
    try:
        value = int(text, 0)
    except ValueError:
        raise _BadArgument(f"--{name}: not an integer: {text!r}") from None
    if not 0 <= value <= limit:
        raise _BadArgument(f"--{name}: {value} is outside 0..{limit}")
    return value


def _address(text, name):
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise _BadArgument(f"--{name}: not an IP address: {text!r}") from None


def _parse(args):
    if args.action not in ("encode", "check"):
        raise _BadArgument(f"action must be encode or check, not {args.action!r}")
    for name in ("secret", "saddr", "daddr", "sport", "dport"):
        if getattr(args, name) is None:
            raise _BadArgument(f"--{name} is required")
    if args.count is not None and args.seconds is not None:
        raise _BadArgument("give --count or --time, not both")
    try:
        secret = bytes.fromhex(args.secret)
    except ValueError:
        raise _BadArgument("--secret: not hex digits") from None
    if len(secret) != 32:
        raise _BadArgument(f"--secret: need 64 hex digits (32 bytes), got {len(secret)} bytes")
    saddr = _address(args.saddr, "saddr")
    daddr = _address(args.daddr, "daddr")
    if saddr.version != daddr.version:
        raise _BadArgument("--saddr and --daddr must be the same IP version")
    sport = _number(args.sport, "sport", 0xFFFF)
    dport = _number(args.dport, "dport", 0xFFFF)
    if args.count is not None:
        count = _number(args.count, "count", 0xFFFFFFFF)
    else:
        if args.seconds is None:
            seconds = time.time()
        else:
            try:
                seconds = float(args.seconds)
            except ValueError:
                raise _BadArgument(f"--time: not a number: {args.seconds!r}") from None
            if not seconds >= 0:
                raise _BadArgument("--time must be a non-negative number of seconds")
        count = syncookies.count_from_time(seconds)
    return secret, str(saddr), str(daddr), sport, dport, count


def run_cookie(args) -> int:
    """Run ``fastseg cookie``; prints one line and returns the exit status."""
    try:
        secret, saddr, daddr, sport, dport, count = _parse(args)
        if args.action == "encode":
            isn = _number(args.isn, "isn", 0xFFFFFFFF)
            mss = _number(args.mss, "mss", 0xFFFF)
        else:
            seq = _number(args.seq, "seq", 0xFFFFFFFF)
            ack = _number(args.ack, "ack", 0xFFFFFFFF)
    except _BadArgument as exc:
        print(f"fastseg cookie: error: {exc}", file=sys.stderr)
        return 2
    if args.action == "encode":
        cookie, enc = syncookies.encode(secret, saddr, daddr, sport, dport, isn, mss, count)
        print(f"cookie={int(cookie)} (0x{int(cookie):08x}) mss={int(enc)} count={count}")
        return 0
    mss = int(syncookies.check(secret, saddr, daddr, sport, dport, seq, ack, count))
    if mss:
        print(f"valid mss={mss} count={count}")
        return 0
    print(f"invalid count={count}")
    return 1
