"""Traffic for the loss captures (run by make_loss.sh inside its namespaces).

python3 traffic.py server|client SCENARIO; every socket has a deadline so
each run stops by itself.

  bulk       client sends 120 kB, server echoes 4 kB back, both close
  zerowin    as bulk, but the server has a tiny receive buffer and reads
             slowly, so the client meets zero windows and probes
  keepalive  client connects, turns keepalives on (1 s idle, 1 s interval),
             stays idle 4.5 s, sends a line, closes
  rto        client sends 60 kB; the relay stops passing TCP after a point,
             the client retransmits with back-off until TCP_USER_TIMEOUT
"""
import socket
import sys
import time

SERVER = ("10.88.0.2", 5001)
BULK = 120_000


def server(scenario):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if scenario == "zerowin":
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    srv.bind(SERVER)
    srv.listen(4)
    srv.settimeout(10)
    try:
        conn, _ = srv.accept()
    except socket.timeout:
        return
    conn.settimeout(8)
    got = 0
    try:
        if scenario == "zerowin":
            time.sleep(1.5)
        while True:
            data = conn.recv(2048 if scenario == "zerowin" else 65536)
            if not data:
                break
            got += len(data)
            if scenario == "zerowin":
                time.sleep(0.02)
            if scenario in ("bulk", "zerowin") and got >= BULK:
                conn.sendall(b"r" * 4000)
                break
        if scenario in ("bulk", "zerowin"):
            while conn.recv(65536):
                pass
    except OSError:
        pass
    conn.close()


def client(scenario):
    s = socket.socket()
    s.settimeout(8)
    if scenario == "rto":
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, 6000)
    s.connect(SERVER)
    try:
        if scenario == "keepalive":
            s.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 5)
            time.sleep(4.5)
            s.sendall(b"bye\n")
        elif scenario == "rto":
            s.sendall(b"x" * 60_000)
            time.sleep(7)
        else:
            s.sendall(b"q" * BULK)
            got = 0
            while got < 4000:
                data = s.recv(65536)
                if not data:
                    break
                got += len(data)
    except OSError:
        pass
    s.close()


if __name__ == "__main__":
    {"server": server, "client": client}[sys.argv[1]](sys.argv[2])
