"""Bounded TCP traffic for the checksum captures: a server that answers a
fixed number of connections and a client that makes them.

    python3 traffic.py server ADDR PORT N
    python3 traffic.py client ADDR PORT N

Each connection: the client sends messages of a few sizes (odd and even, up to
a few full segments), the server answers each with a reply whose length
depends on the request, then the client closes first.  Everything times out
after a few seconds so a failed run never hangs.
"""
import socket
import sys

SIZES = (1, 37, 200, 1449, 3001)
TIMEOUT = 5.0


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def recv_exact(sock, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def server(addr, port, count):
    with socket.socket(family(addr), socket.SOCK_STREAM) as ls:
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.settimeout(TIMEOUT)
        ls.bind((addr, port))
        ls.listen(8)
        for _ in range(count):
            conn, _ = ls.accept()
            with conn:
                conn.settimeout(TIMEOUT)
                for size in SIZES:
                    data = recv_exact(conn, size)
                    if len(data) < size:
                        break
                    conn.sendall(bytes((size * 7 + i) & 0xff for i in range(size // 3 + 1)))
                recv_exact(conn, 1)  # wait for the client's FIN


def client(addr, port, count):
    for c in range(count):
        with socket.create_connection((addr, port), timeout=TIMEOUT) as s:
            for size in SIZES:
                s.sendall(bytes((c + i * 13) & 0xff for i in range(size)))
                recv_exact(s, size // 3 + 1)


if __name__ == "__main__":
    role, addr, port, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    (server if role == "server" else client)(addr, port, count)
