"""A user-space netem between two TAP devices (this kernel has no netem
qdisc).  Creates TAP devices A and B in the current namespace, then copies
every frame from one to the other, applying netem-like rules to IPv4 TCP
frames only (ARP and the rest pass untouched):

  --loss P        drop with probability P
  --delay MS      hold each frame MS milliseconds (--jitter MS: +- uniform)
  --dup P         send a second copy with probability P
  --reorder P     with probability P send at once, skipping the delay (netem's
                  reorder: the others keep their delay, so this one overtakes)
  --blackhole-after N  after N TCP frames from B to A, drop every TCP frame
                  in both directions (a peer that stopped answering)

Seeded (--seed) so that the same rules drop the same frames.  Bounded: it
exits after --seconds.  Usage (root): python3 relay.py TAPA TAPB [rules]
and, once it prints "ready", move the devices into their namespaces.
"""
import argparse
import fcntl
import heapq
import os
import random
import select
import struct
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    return fd


def is_tcp(frame):
    return len(frame) >= 34 and frame[12:14] == b"\x08\x00" and frame[23] == 6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tap_a")
    ap.add_argument("tap_b")
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--jitter", type=float, default=0.0)
    ap.add_argument("--dup", type=float, default=0.0)
    ap.add_argument("--reorder", type=float, default=0.0)
    ap.add_argument("--blackhole-after", type=int, default=-1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=20.0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    fds = [open_tap(args.tap_a), open_tap(args.tap_b)]
    print("ready", flush=True)
    queue = []          # (due, order, out_fd, frame)
    order = 0
    from_b = 0
    end = time.monotonic() + args.seconds
    while True:
        now = time.monotonic()
        if now >= end:
            break
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            try:
                os.write(out, frame)
            except OSError:
                pass
        timeout = min(end - now, (queue[0][0] - now) if queue else 0.05)
        ready, _, _ = select.select(fds, [], [], max(timeout, 0.0))
        for fd in ready:
            out = fds[1] if fd == fds[0] else fds[0]
            while True:
                try:
                    frame = os.read(fd, 65536)
                except (BlockingIOError, OSError):
                    break
                if not is_tcp(frame):
                    heapq.heappush(queue, (time.monotonic(), order, out, frame))
                    order += 1
                    continue
                if fd == fds[1]:
                    from_b += 1
                if 0 <= args.blackhole_after < from_b:
                    continue
                if rng.random() < args.loss:
                    continue
                copies = 2 if rng.random() < args.dup else 1
                for _ in range(copies):
                    delay = args.delay + rng.uniform(-args.jitter, args.jitter)
                    if rng.random() < args.reorder:
                        delay = 0.0
                    heapq.heappush(queue, (time.monotonic() + max(delay, 0.0) / 1000.0,
                                           order, out, frame))
                    order += 1


if __name__ == "__main__":
    main()
