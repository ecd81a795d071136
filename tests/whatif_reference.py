"""A plain-Python listen-queue model: the oracle for fastseg._whatif.

Written straight from the kernel functions (tcp_conn_request,
reqsk_timer_handler, tcp_check_req, tcp_v4_syn_recv_sock), with one priority
queue for every event and a dict per request, none of the kernel module's
rings.  Same inputs and outputs as ``fastseg._whatif.replay``; events at equal
times go client segments first, then timers (by retry step, then age), then
SYNs, as the Cython loop orders them."""
import heapq
import math

from fastseg import _consts

VERDICT = {name: code for code, name in enumerate(_consts.SYN_VERDICT_NAMES)}
OK_QUEUE, OK_COOKIE, OK_AFTER_RETRIES, GAVE_UP, RESET = (
    _consts.CO_OK_QUEUE, _consts.CO_OK_COOKIE, _consts.CO_OK_AFTER_RETRIES, _consts.CO_GAVE_UP,
    _consts.CO_RESET)
TCP_RTO_MAX = 120.0
DATA_SEGMENTS = 9          # a client's first data and 8 retransmissions


def data_gap(rtt, sent):
    """When a client that believes it is connected sends data segment
    ``sent`` after the previous one: at once, then on its doubling RTO."""
    if sent == 0:
        return 0.0
    return max(3.0 * rtt, rtt + 0.2) * 2 ** (sent - 1)


def wheel_arm(now, timeout, tick, phase):
    """kernel/time/timer.c: the expiry of a timer armed ``timeout`` s ahead."""
    if tick <= 0:
        return now + timeout
    j_now = math.floor((now - phase) / tick)
    delta = int(timeout / tick + 0.5)
    expires = j_now + delta
    shift = 0
    while shift < 24 and delta >= (63 << shift):
        shift += 3
    return phase + (((expires >> shift) + 1) << shift) * tick


def replay(syn_t, syn_client, syn_tw, syn_rst_delay, syn_proven, client_rtt, client_data_first,
           *, backlog, syncookies, synack_retries, max_syn_backlog, abort_on_overflow,
           full_gt, accept_interval, until=math.inf, tick=0.0, phase=0.0):
    n_client = len(client_rtt)
    counters = dict(overflows=0, drops=0, reqq_drop=0, do_cookies=0, cookies_sent=0,
                    cookies_recv=0, syn_retrans=0, passive_opens=0, expired=0)
    verdict = [0] * len(syn_t)
    state = ["waiting"] * n_client
    outcome = [0] * n_client
    done = [-1.0] * n_client
    attempts = [0] * n_client
    synack_rtx = [0] * n_client
    data_sent = [0] * n_client
    requests = {}          # id -> dict(timeouts, owner, alive)
    queue = dict(qlen=0, young=0, acc=0, acc_next=math.inf)
    events = []            # (t, class, key..., payload)
    for i, t in enumerate(syn_t):
        heapq.heappush(events, (t, 2, i, 0, ("syn", i)))
    seq = [0]

    def push_client(t, kind, c, r):
        seq[0] += 1
        heapq.heappush(events, (t, 0, seq[0], 0, (kind, c, r)))

    def push_timer(t, k, r):
        heapq.heappush(events, (t, 1, k, r, ("timer", r)))

    def drain(t):
        if accept_interval == 0:
            queue["acc"] = 0
            return
        while queue["acc"] > 0 and queue["acc_next"] <= t:
            queue["acc"] -= 1
            queue["acc_next"] += accept_interval

    def accept_push(t):
        if accept_interval == 0:
            return
        if queue["acc"] == 0:
            queue["acc_next"] = t + accept_interval
        queue["acc"] += 1

    def remove(r):
        req = requests[r]
        req["alive"] = False
        queue["qlen"] -= 1
        if req["timeouts"] == 0:
            queue["young"] -= 1

    def finish(c, t, out):
        state[c] = "done"
        outcome[c] = out
        done[c] = t

    stopped = False
    while events:
        t, cls, _, _, ev = heapq.heappop(events)
        if t > until:
            stopped = True
            break
        drain(t)
        if ev[0] == "syn":
            i = ev[1]
            c = syn_client[i]
            if c >= 0:
                if state[c] != "waiting":
                    continue
                attempts[c] += 1
            full = queue["qlen"] > backlog if full_gt else queue["qlen"] >= backlog
            want_cookie, v = False, "queued"
            if not syn_tw[i] and (syncookies == 2 or full):
                if syncookies:
                    want_cookie = True
                    counters["do_cookies"] += 1
                else:
                    counters["reqq_drop"] += 1
                    v = "drop_syn_queue_full"
            if v == "queued" and queue["acc"] > backlog:
                counters["overflows"] += 1
                v = "drop_accept_queue_full"
            if (v == "queued" and not want_cookie and not syn_tw[i] and syncookies == 0
                    and max_syn_backlog - queue["qlen"] < (max_syn_backlog >> 2)
                    and not syn_proven[i]):
                v = "drop_unproven_peer"
            if v != "queued":
                counters["drops"] += 1
            elif want_cookie:
                v = "cookie"
                counters["cookies_sent"] += 1
                if c >= 0:
                    state[c] = "cookie"
                    push_client(t + client_rtt[c], "ack_cookie", c, -1)
            else:
                r = i
                requests[r] = dict(timeouts=0, owner=c, alive=True)
                queue["qlen"] += 1
                queue["young"] += 1
                push_timer(wheel_arm(t, 1.0, tick, phase), 0, r)
                if c >= 0:
                    state[c] = "request"
                    push_client(t + client_rtt[c], "ack_request", c, r)
                elif syn_rst_delay[i] >= 0:
                    push_client(t + syn_rst_delay[i], "rst", -1, r)
            verdict[i] = VERDICT[v]
        elif ev[0] == "timer":
            r = ev[1]
            req = requests[r]
            if not req["alive"]:
                continue
            thresh = synack_retries
            if 2 * queue["qlen"] > max(8, backlog):
                young2 = 2 * queue["young"]
                while thresh > 2 and queue["qlen"] >= young2:
                    thresh -= 1
                    young2 *= 2
            c = req["owner"]
            if req["timeouts"] >= thresh:
                remove(r)
                counters["expired"] += 1
                if c >= 0 and state[c] == "request":
                    finish(c, t, RESET)
            else:
                counters["syn_retrans"] += 1
                if req["timeouts"] == 0:
                    queue["young"] -= 1
                req["timeouts"] += 1
                push_timer(wheel_arm(t, min(2.0 ** req["timeouts"], TCP_RTO_MAX), tick, phase),
                           req["timeouts"], r)
                if c >= 0 and state[c] == "request":
                    synack_rtx[c] += 1
                    push_client(t + client_rtt[c], "ack_request", c, r)
        elif ev[0] == "rst":
            if requests[ev[2]]["alive"]:
                remove(ev[2])
        elif ev[0] in ("ack_request", "data_request"):
            kind, c, r = ev
            if not requests[r]["alive"] or state[c] != "request":
                continue
            if queue["acc"] > backlog:
                counters["overflows"] += 1
                counters["drops"] += 1
                if abort_on_overflow:
                    remove(r)
                    finish(c, t, RESET)
                elif (client_data_first[c] and data_sent[c] < DATA_SEGMENTS
                      and (kind == "data_request" or data_sent[c] == 0)):
                    push_client(t + data_gap(client_rtt[c], data_sent[c]), "data_request", c, r)
                    data_sent[c] += 1
                continue
            remove(r)
            accept_push(t)
            counters["passive_opens"] += 1
            first_try = attempts[c] == 1 and synack_rtx[c] == 0 and data_sent[c] <= 1
            finish(c, t, OK_QUEUE if first_try else OK_AFTER_RETRIES)
        else:  # ack_cookie
            _, c, _ = ev
            if state[c] != "cookie":
                continue
            counters["cookies_recv"] += 1
            if queue["acc"] > backlog:
                counters["overflows"] += 1
                counters["drops"] += 1
                if abort_on_overflow:
                    finish(c, t, RESET)
                elif client_data_first[c] and data_sent[c] < DATA_SEGMENTS:
                    push_client(t + data_gap(client_rtt[c], data_sent[c]), "ack_cookie", c, -1)
                    data_sent[c] += 1
                else:
                    finish(c, t, GAVE_UP)
                continue
            accept_push(t)
            counters["passive_opens"] += 1
            finish(c, t, OK_COOKIE)
    for c in range(n_client):
        if state[c] == "waiting" and attempts[c] > 0 and not stopped:
            outcome[c] = GAVE_UP
    return dict(verdict=verdict, outcome=outcome, done=done, attempts=attempts,
                synack_rtx=synack_rtx, counters=counters)
