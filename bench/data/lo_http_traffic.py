"""Bounded HTTP/1.0 exchange on loopback for lo_http.pcap: a server on
127.0.0.2:8080 answers a fixed number of short connections from 127.0.0.1,
one request and one response each, the client closing first (HTTP/1.0 with
the server closing after the response would put TIME-WAIT on the server;
here both orders occur).  Usage: python3 lo_http_traffic.py server|client N"""
import socket
import sys
import threading

HOST, PORT = "127.0.0.2", 8080
BODY = b"x" * 120


def serve(n):
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind((HOST, PORT))
    ls.listen(128)
    ls.settimeout(20)
    for i in range(n):
        try:
            s, _ = ls.accept()
        except socket.timeout:
            break
        s.settimeout(5)
        try:
            req = b""
            while b"\r\n\r\n" not in req:
                chunk = s.recv(4096)
                if not chunk:
                    break
                req += chunk
            s.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n" % len(BODY) + BODY)
            if i % 2:
                s.shutdown(socket.SHUT_WR)       # server closes first
            s.recv(1)
        except OSError:
            pass
        s.close()
    ls.close()


def client(n):
    for i in range(n):
        c = socket.create_connection((HOST, PORT), timeout=5, source_address=("127.0.0.1", 0))
        c.sendall(b"GET /item/%d HTTP/1.0\r\nHost: bench\r\n\r\n" % i)
        got = b""
        while len(got) < len(BODY) + 30:
            chunk = c.recv(4096)
            if not chunk:
                break
            got += chunk
            if got.endswith(BODY):
                break
        c.close()


if __name__ == "__main__":
    role, n = sys.argv[1], int(sys.argv[2])
    if role == "server":
        serve(n)
    else:
        client(n)
