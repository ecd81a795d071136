#!/usr/bin/env python3
"""Small, bounded TCP client/server used to generate the committed captures.

Run it inside a network namespace (make_captures.py does):

    traffic.py serve --addr 127.0.0.1 --addr ::1 --ready FILE [--lifetime 40]
    traffic.py client --host 127.0.0.1 SCENARIO[:PORT] ...

The server listens on one port per behaviour (see BEHAVIOURS) on every given
address and handles each connection in a thread.  Every loop is bounded by a
deadline and every socket has a timeout, so nothing here can run forever.
The client runs its scenarios one after another with a short pause, so the
conversations in a capture do not interleave.
"""
import argparse
import os
import socket
import struct
import sys
import threading
import time

# server port -> behaviour
PORTS = {
    "fin_client_first": 5001,   # request/response, client closes first, server follows
    "fin_server_first": 5002,   # request/response, server closes first
    "refused": 5003,            # nobody listens here
    "rst_client": 5004,         # client aborts with SO_LINGER 0 after a request
    "close_wait": 5005,         # client closes, server reads EOF and keeps its socket
    "urgent": 5006,             # client sends one urgent (MSG_OOB) byte, then closes
    "rst_server": 5007,         # server aborts with SO_LINGER 0 after reading the request
    "bulk": 5008,               # client sends --bulk bytes, then closes
    "tfo": 5009,                # TCP Fast Open listener (request/response, client closes)
    "unanswered": 5010,         # SYNs dropped by a firewall rule (nft) or a dead peer
}
REQUEST = b"GET /fastseg HTTP/1.0\r\n\r\n"          # 25 bytes
RESPONSE = b"HTTP/1.0 200 OK\r\n\r\n" + b"x" * 100   # 119 bytes
TIMEOUT = 5.0
HELD = []           # server sockets deliberately left open (CLOSE-WAIT)


def linger0(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def recv_until_eof(sock, limit=1 << 24):
    total = 0
    while total < limit:
        chunk = sock.recv(65536)
        if not chunk:
            break
        total += len(chunk)
    return total


def handle(behaviour, conn):
    conn.settimeout(TIMEOUT)
    try:
        if behaviour in ("fin_client_first", "tfo"):
            recv_exact(conn, len(REQUEST))
            conn.sendall(RESPONSE)
            recv_until_eof(conn)
            conn.close()
        elif behaviour == "fin_server_first":
            recv_exact(conn, len(REQUEST))
            conn.sendall(RESPONSE)
            conn.close()
        elif behaviour in ("rst_client", "bulk", "urgent"):
            try:
                recv_until_eof(conn)
            except ConnectionResetError:
                pass
            conn.close()
        elif behaviour == "close_wait":
            recv_until_eof(conn)
            HELD.append(conn)       # never closed while the capture runs
        elif behaviour == "rst_server":
            recv_exact(conn, len(REQUEST))
            linger0(conn)
            conn.close()
    except OSError:
        conn.close()


def listen(behaviour, addr, port, deadline):
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    srv = socket.socket(family, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if behaviour == "tfo":
        srv.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
    srv.bind((addr, port))
    srv.listen(16)
    srv.settimeout(0.2)

    def loop():
        while time.monotonic() < deadline:
            try:
                conn, _ = srv.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            threading.Thread(target=handle, args=(behaviour, conn), daemon=True).start()
        srv.close()

    t = threading.Thread(target=loop, daemon=True)
    t.start()
    return t


def serve(args):
    deadline = time.monotonic() + args.lifetime
    for addr in args.addr:
        for behaviour, port in PORTS.items():
            if behaviour in ("refused", "unanswered"):
                continue
            listen(behaviour, addr, port, deadline)
    with open(args.ready, "w") as f:
        f.write("ready\n")
    # Sleep until killed or the lifetime is over; the capture is stopped
    # before that, so CLOSE-WAIT sockets stay open in the capture.
    while time.monotonic() < deadline:
        time.sleep(0.1)


# ---------------------------------------------------------------- client
# IPv4 Record Route option with one slot (the kernel fills it in), then
# End of Options: 8 bytes, so IHL = 7.
RECORD_ROUTE = bytes([7, 7, 4, 0, 0, 0, 0, 0])


def connect(host, port, maxseg=None, rcvbuf=None, timeout=TIMEOUT, ip_options=None):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(timeout)
    if ip_options:
        s.setsockopt(socket.IPPROTO_IP, socket.IP_OPTIONS, ip_options)
    if maxseg:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, maxseg)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect((host, port))
    return s


def c_fin_client_first(host, port, **kw):
    s = connect(host, port, **kw)
    s.sendall(REQUEST)
    recv_exact(s, len(RESPONSE))
    s.close()


def c_fin_server_first(host, port, **kw):
    s = connect(host, port)
    s.sendall(REQUEST)
    recv_until_eof(s)
    time.sleep(0.05)    # the server's FIN comes well before ours
    s.close()


def c_refused(host, port, **kw):
    try:
        connect(host, port).close()
    except ConnectionRefusedError:
        return
    raise SystemExit(f"refused: {host}:{port} accepted a connection")


def c_rst_client(host, port, **kw):
    s = connect(host, port)
    s.sendall(REQUEST)
    time.sleep(0.05)
    linger0(s)
    s.close()


def c_close_wait(host, port, **kw):
    s = connect(host, port)
    s.sendall(REQUEST)
    s.close()


def c_rst_server(host, port, **kw):
    s = connect(host, port)
    s.sendall(REQUEST)
    try:
        recv_until_eof(s)
    except ConnectionResetError:
        pass
    s.close()


def c_urgent(host, port, **kw):
    s = connect(host, port)
    s.sendall(REQUEST)
    s.send(b"!", socket.MSG_OOB)
    time.sleep(0.05)
    s.close()


def c_ipopts(host, port, **kw):
    """A request/response connection whose client packets carry IPv4 options."""
    c_fin_client_first(host, port, ip_options=RECORD_ROUTE)


def c_bulk(host, port, nbytes=20000, maxseg=None, **kw):
    s = connect(host, port, maxseg=maxseg, timeout=20)
    s.sendall(b"b" * nbytes)
    s.shutdown(socket.SHUT_WR)
    recv_until_eof(s)
    s.close()


def c_tfo(host, port, **kw):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    # MSG_FASTOPEN connects and sends in the SYN (or asks for a cookie
    # first); on a blocking socket it returns once the data is queued.
    s.sendto(REQUEST, socket.MSG_FASTOPEN, (host, port))
    s.settimeout(TIMEOUT)
    recv_exact(s, len(RESPONSE))
    s.close()


def c_unanswered(host, port, **kw):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_STREAM)
    # Two retransmissions (after 1 s and 3 s), then give up.
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, 2)
    s.settimeout(3.5)
    try:
        s.connect((host, port))
    except (socket.timeout, OSError):
        s.close()
        return
    raise SystemExit(f"unanswered: {host}:{port} answered")


def c_udp(host, port, **kw):
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.sendto(b"fastseg-udp", (host, port))
    s.close()


def set_sysctls(values):
    old = {}
    for key, val in values.items():
        path = "/proc/sys/" + key.replace(".", "/")
        with open(path) as f:
            old[key] = f.read().strip()
        with open(path, "w") as f:
            f.write(str(val))
    return old


def c_noopts(host, port, **kw):
    """A connection whose SYN offers no timestamps, SACK or window scaling
    (namespace sysctls switched off for the SYN) and a small MSS."""
    old = set_sysctls({"net.ipv4.tcp_timestamps": 0, "net.ipv4.tcp_sack": 0,
                       "net.ipv4.tcp_window_scaling": 0})
    try:
        c_fin_client_first(host, port, maxseg=536)
    finally:
        set_sysctls(old)


CLIENTS = {
    "fin_client_first": c_fin_client_first,
    "fin_server_first": c_fin_server_first,
    "refused": c_refused,
    "rst_client": c_rst_client,
    "close_wait": c_close_wait,
    "rst_server": c_rst_server,
    "urgent": c_urgent,
    "ipopts": c_ipopts,
    "bulk": c_bulk,
    "tfo": c_tfo,
    "unanswered": c_unanswered,
    "udp": c_udp,
    "noopts": c_noopts,
}
DEFAULT_PORT = dict(PORTS, udp=5099, noopts=PORTS["fin_client_first"],
                    ipopts=PORTS["fin_client_first"])


def client(args):
    for item in args.scenarios:
        name, _, port = item.partition(":")
        port = int(port) if port else DEFAULT_PORT[name]
        kw = {}
        if name == "bulk":
            kw = {"nbytes": args.bulk, "maxseg": args.maxseg}
        CLIENTS[name](args.host, port, **kw)
        time.sleep(args.gap)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve")
    s.add_argument("--addr", action="append", required=True)
    s.add_argument("--ready", required=True)
    s.add_argument("--lifetime", type=float, default=40.0)
    c = sub.add_parser("client")
    c.add_argument("--host", required=True)
    c.add_argument("--gap", type=float, default=0.1)
    c.add_argument("--bulk", type=int, default=20000)
    c.add_argument("--maxseg", type=int, default=None)
    c.add_argument("scenarios", nargs="+")
    args = p.parse_args(argv)
    if args.cmd == "serve":
        serve(args)
    else:
        client(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
