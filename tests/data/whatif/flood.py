"""Traffic for the whatif floods (run by make_whatif.sh inside its namespaces).

server BACKLOG ACCEPT SECONDS
    listen on 10.78.0.2:8080 with BACKLOG; ACCEPT is "all" (accept and answer
    each request) or "never" (never accept: the accept queue fills).
client SECONDS N_LEGIT BURSTS
    N_LEGIT legitimate connections, one every SECONDS / N_LEGIT, each in its own
    thread (send a line, wait up to 1 s for an answer, close); and BURSTS, a
    comma list of "start:count:duration" bursts of SYNs from spoofed 198.18.x.y
    sources sent on a raw socket.  Everything is bounded in count and time."""
import socket
import sys
import threading
import time

SERVER = ("10.78.0.2", 8080)


def server(backlog, accept, seconds):
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(SERVER)
    srv.listen(int(backlog))
    end = time.time() + float(seconds)
    if accept == "never":
        time.sleep(max(0.0, end - time.time()))
        return
    srv.settimeout(0.2)
    while time.time() < end:
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        threading.Thread(target=_answer, args=(conn,), daemon=True).start()


def _answer(conn):
    conn.settimeout(1)
    try:
        if conn.recv(100):
            conn.sendall(b"ok\n")
    except OSError:
        pass
    conn.close()


def _legit():
    try:
        s = socket.create_connection(SERVER, timeout=8)
        s.settimeout(1)
        s.sendall(b"hello\n")
        try:
            s.recv(10)
        except OSError:
            pass
        s.close()
    except OSError:
        pass


def _flood(start, count, duration, first):
    from scapy.all import IP, TCP
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    pkts = [bytes(IP(src=f"198.18.{(first + i) // 250}.{1 + (first + i) % 250}", dst=SERVER[0])
                  / TCP(sport=20000 + first + i, dport=SERVER[1], flags="S",
                        seq=(7919 * (first + i)) & 0xFFFFFFFF, window=1024,
                        options=[("MSS", 1460)]))
            for i in range(count)]
    t0 = time.time() + start
    gap = duration / count
    for i, p in enumerate(pkts):
        delay = t0 + i * gap - time.time()
        if delay > 0:
            time.sleep(delay)
        raw.sendto(p, (SERVER[0], 0))
    raw.close()


def client(seconds, n_legit, bursts):
    seconds, n_legit = float(seconds), int(n_legit)
    threads, first = [], 0
    for spec in bursts.split(","):
        start, count, duration = spec.split(":")
        threads.append(threading.Thread(target=_flood,
                                        args=(float(start), int(count), float(duration), first)))
        first += int(count)
    for t in threads:
        t.start()
    begin = time.time()
    for i in range(n_legit):
        delay = begin + i * seconds / n_legit - time.time()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=_legit, daemon=True)
        t.start()
        threads.append(t)
    deadline = time.time() + 16
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.time()))


if __name__ == "__main__":
    {"server": server, "client": client}[sys.argv[1]](*sys.argv[2:])
