"""Traffic for syn_flood.pcap (run by make_flood.sh inside its namespaces).

server: listen on 10.77.0.2:8080 (backlog 16), answer each request, bounded in time.
client: 8 legitimate connections, then 450 SYNs from spoofed 198.18.x.y sources
        in ~0.5 s (scapy), then 8 more legitimate connections."""
import socket
import sys
import threading
import time

SERVER = ("10.77.0.2", 8080)
N_SPOOFED = 450


def server():
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(SERVER)
    srv.listen(16)
    srv.settimeout(0.5)
    end = time.time() + 12
    while time.time() < end:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        conn.settimeout(2)
        try:
            if conn.recv(100):
                conn.sendall(b"ok\n")
        except OSError:
            pass
        conn.close()


def legit(n):
    for _ in range(n):
        try:
            s = socket.create_connection(SERVER, timeout=3)
            s.sendall(b"hello\n")
            s.recv(10)
            s.close()
        except OSError:
            pass
        time.sleep(0.05)


def client():
    from scapy.all import IP, TCP, conf, send
    conf.verb = 0
    legit(8)
    pkts = [IP(src=f"198.18.{i // 250}.{1 + i % 250}", dst=SERVER[0])
            / TCP(sport=10000 + i, dport=SERVER[1], flags="S", seq=1000 * i, window=1024)
            for i in range(N_SPOOFED)]
    t = threading.Thread(target=legit, args=(4,))
    t.start()
    send(pkts, inter=0.0008)
    t.join()
    legit(8)


if __name__ == "__main__":
    {"server": server, "client": client}[sys.argv[1]]()
