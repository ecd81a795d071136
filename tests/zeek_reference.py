"""A direct pure-Python transcription of Zeek's per-packet TCP logic
(TCPSessionAdapter::Process and UpdateStateMachine, update_history,
TCP_Endpoint::Size, conn_state() of base/protocols/conn/main.zeek, and the
content gaps of TCP_Reassembler: DataSent/NewBlock/BlockInserted,
AckReceived/TrimToSeq/Undelivered/Gap with a real list of buffered blocks)
for one connection whose first packet is a plain SYN from the originator.
No timers, no reuse, no flips: a test oracle for the Cython kernel on random
packet sequences, written object-per-endpoint as Zeek is."""
import re

INACTIVE, SYN_SENT, SYN_ACK_SENT, PARTIAL, ESTABLISHED, CLOSED, RESET = range(7)
FIN, SYN, RST, ACK = 0x01, 0x02, 0x04, 0x10
BIG = 1048576


def sd(a, b):
    d = (a - b) & 0xFFFFFFFF
    return d - (1 << 32) if d >= (1 << 31) else d


class Endpoint:
    def __init__(self, is_orig):
        self.is_orig = is_orig
        self.state = self.prev_state = INACTIVE
        self.start = self.ack_seq = self.last_seq = 0
        self.hist_last = {"S": None, "F": None, "R": None}
        self.fin_cnt = 0
        self.did_close = False
        self.rxmit = self.zwin = self.gap_cnt = 0
        # TCP_Reassembler (relative sequence numbers, data starts at 1)
        self.last_reassem = self.trim_seq = 1
        self.blocks = []            # sorted, disjoint [lo, hi) ranges above last_reassem
        self.max_blocks = 0         # most disjoint buffered ranges at once
        self.skip = False
        self.fin_seq = 0

    def clean(self):
        return self.state == ESTABLISHED or (self.state == CLOSED and self.prev_state == ESTABLISHED)

    def set_state(self, s):
        if s != self.state:
            self.prev_state, self.state = self.state, s

    def size(self, peer):
        if (self.prev_state == SYN_SENT and self.state == RESET and peer.state == INACTIVE
                and sd(self.ack_seq, self.start) != 0):
            return 0
        last = sd(self.last_seq, self.start)
        ack = sd(self.ack_seq, self.start)
        size = max(last, ack)
        if size > 0:
            size -= 1
        if self.fin_cnt and size > 0:
            size -= 1
        return size


class Conn:
    def __init__(self):
        self.orig, self.resp = Endpoint(True), Endpoint(False)
        self.history = ""
        self.seen = set()
        self.missed_bytes = 0
        self.partial = False
        self.first_seen = set()

    def gap(self, e, p, length):
        # TCP_Reassembler::Gap -> TCP_Endpoint::Gap and the content_gap event
        if e.clean() and p.clean():
            self.scaled(e, "gap_cnt", "G")
            self.missed_bytes += length

    def deliver_blocks(self, e):
        # BlockInserted: deliver what now starts at last_reassem
        while e.blocks and e.blocks[0][0] <= e.last_reassem:
            lo, hi = e.blocks.pop(0)
            e.last_reassem = max(e.last_reassem, hi)

    def data_sent(self, e, seq, length):
        ack = sd(e.ack_seq, e.start)
        upper = seq + length
        if e.skip:
            return
        if seq < ack:
            if upper <= ack:
                return
            seq = ack
        if upper <= e.trim_seq:
            return
        seq = max(seq, e.trim_seq)
        if upper <= e.last_reassem:
            return
        if seq <= e.last_reassem:
            e.last_reassem = upper
            self.deliver_blocks(e)
        else:
            merged = []
            lo, hi = seq, upper
            for b in e.blocks:
                if b[1] < lo or b[0] > hi:
                    merged.append(b)
                else:
                    lo, hi = min(lo, b[0]), max(hi, b[1])
            merged.append((lo, hi))
            e.blocks = sorted(merged)
            e.max_blocks = max(e.max_blocks, len(e.blocks))
        if (ack in (0, 1) and e.blocks
                and e.blocks[-1][1] - e.last_reassem > 16384):   # above_hole_data_without_any_acks
            e.blocks = []
            e.skip = True

    def ack_received(self, e, p, seq):
        if e.fin_cnt > 0 and seq >= e.fin_seq:
            seq = e.fin_seq - 1
        if seq <= e.trim_seq:
            return
        if seq > e.last_reassem:                                # Trim -> Undelivered
            if not (seq <= 2 and self.partial):
                if not e.skip:
                    while e.blocks and e.blocks[0][0] < seq:
                        lo = e.blocks[0][0]
                        if lo > e.last_reassem:
                            self.gap(e, p, lo - e.last_reassem)
                            e.last_reassem = lo
                        self.deliver_blocks(e)
                    if seq > e.last_reassem:
                        self.gap(e, p, seq - e.last_reassem)
                e.last_reassem = max(e.last_reassem, seq)
        e.blocks = [b for b in e.blocks if b[1] > seq]
        e.trim_seq = seq

    def letter(self, ep, code):
        self.history += code if ep.is_orig else code.lower()

    def check(self, ep, mask, code):
        key = (ep.is_orig, mask)
        if key in self.seen:
            return True
        self.seen.add(key)
        self.letter(ep, code)
        return False

    def scaled(self, ep, attr, code):
        n = getattr(ep, attr) + 1
        setattr(ep, attr, n)
        if str(n).rstrip("0") == "1":
            self.letter(ep, code)

    def packet(self, is_orig, flags, seq, ack, plen, window=65535):
        e, p = (self.orig, self.resp) if is_orig else (self.resp, self.orig)
        syn, fin, rst, ackf = flags & SYN, flags & FIN, flags & RST, flags & ACK
        seg_len = plen + (1 if syn else 0) + (1 if fin else 0) - (plen if rst else 0)
        end = (seq + seg_len) & 0xFFFFFFFF
        # init_endpoint
        if e.state == INACTIVE:
            last = end
            if syn:
                e.start = e.ack_seq = seq
            else:
                e.start = e.ack_seq = (seq - 1) & 0xFFFFFFFF
                last = seq
            e.last_seq = last
        elif e.state in (SYN_SENT, SYN_ACK_SENT):
            if syn and seq != e.start:
                e.start = e.ack_seq = seq
                e.last_seq = end
        elif e.state in (ESTABLISHED, PARTIAL):
            if syn:
                e.start = e.ack_seq = seq
                e.last_seq = end
        elif e.state == RESET and syn and e.prev_state == INACTIVE:
            e.start = e.ack_seq = seq
            e.last_seq = end
        rel = sd(seq, e.start) & 0xFFFFFFFF
        rel_signed = sd(seq, e.start)
        # SetPartialStatus
        if is_orig and "o" not in self.first_seen:
            self.partial = (not syn) or bool(ackf)
            self.first_seen.add("o")
        elif not is_orig and "r" not in self.first_seen:
            if not self.partial:
                self.partial = not syn
            self.first_seen.add("r")
        # update_history
        bits = bool(syn) + bool(fin) + bool(rst)
        if bits > 1:
            self.check(e, "I" if (fin and rst) else "Q", "I" if (fin and rst) else "Q")
        elif bits == 1:
            if syn:
                code = "H" if ackf else "S"
                if self.check(e, "S", code) and rel != e.hist_last["S"]:
                    self.letter(e, code)
                e.hist_last["S"] = rel
            if fin:
                key = (rel + plen) & 0xFFFFFFFF
                if self.check(e, "F", "F") and key != e.hist_last["F"]:
                    self.letter(e, "F")
                e.hist_last["F"] = key
            if rst:
                if self.check(e, "R", "R") and rel != e.hist_last["R"]:
                    self.letter(e, "R")
                e.hist_last["R"] = rel
        else:
            if plen:
                self.check(e, "D", "D")
            elif ackf:
                self.check(e, "A", "A")
        if window == 0 and not rst and p.state != CLOSED and e.state != RESET:
            self.scaled(e, "zwin", "W")
        if fin:
            e.fin_cnt += 1
            e.fin_seq = rel_signed + seg_len
        rel_ack = 0
        if ackf:
            if p.state == INACTIVE:
                p.start = p.ack_seq = p.last_seq = (ack - 1) & 0xFFFFFFFF
                rel_ack = 1
            else:
                rel_ack = max(0, sd(ack, p.start))      # underflow: 0
            if p.state != INACTIVE and sd(ack, p.start) >= 0 and not rst:
                d = sd(ack, p.ack_seq)
                if not (ack == 0 and d > BIG) and d > 0:
                    p.ack_seq = ack
        # update_last_seq
        dl = sd(end, e.last_seq)
        if (syn or rst) and (dl > BIG or dl < -BIG):
            pass
        elif fin and e.last_seq == (e.start + 1) & 0xFFFFFFFF:
            e.last_seq = end
        elif e.state == RESET:
            pass
        elif dl > 0:
            e.last_seq = end
        elif plen > 0:
            self.scaled(e, "rxmit", "T")
        # UpdateStateMachine (no flips: the originator's first packet is a SYN)
        close = False
        if e.state == INACTIVE:
            if syn:
                if is_orig:
                    e.set_state(SYN_ACK_SENT if ackf else SYN_SENT)
                else:
                    if p.state == SYN_SENT:
                        p.set_state(ESTABLISHED)
                    e.set_state(ESTABLISHED)
            if fin:
                e.set_state(CLOSED)
                close = True
            if rst:
                e.set_state(RESET)
                close = True
            if e.state == INACTIVE:
                if not is_orig and plen == 0 and self.orig.state == SYN_SENT:
                    pass
                elif ackf and p.state == ESTABLISHED:
                    e.set_state(ESTABLISHED)
                else:
                    e.set_state(PARTIAL)
        elif e.state in (SYN_SENT, SYN_ACK_SENT):
            if fin:
                e.set_state(CLOSED)
                close = True
            if rst:
                e.set_state(RESET)
                close = True
        elif e.state in (ESTABLISHED, PARTIAL):
            if syn and e.state == PARTIAL and p.state == INACTIVE and not ackf:
                e.set_state(SYN_SENT)
            if fin and not rst:
                e.set_state(CLOSED)
                if p.state == RESET and p.prev_state == CLOSED:
                    p.set_state(CLOSED)
                close = True
            if rst:
                e.set_state(RESET)
                close = True
        elif e.state == CLOSED:
            if rst and p.state != CLOSED:
                e.set_state(RESET)
                if not e.did_close:
                    close = True
        if close:
            e.did_close = True
        if ackf and rel_ack:
            self.ack_received(p, e, rel_ack)
        if plen and not rst and rel_signed >= 0:
            self.data_sent(e, rel_signed + (1 if syn else 0), plen)

    def conn_state(self):
        os_, rs = self.orig.state, self.resp.state
        o_in = os_ in (INACTIVE, PARTIAL)
        r_in = rs in (INACTIVE, PARTIAL)
        ob, rb = self.orig.size(self.resp), self.resp.size(self.orig)
        if rs == RESET:
            if os_ in (SYN_SENT, SYN_ACK_SENT) or (os_ == RESET and ob == 0 and rb == 0):
                return "REJ"
            return "RSTRH" if o_in else "RSTR"
        if os_ == RESET:
            if r_in:
                return "RSTOS0" if re.fullmatch(r"\^?S[^HAFGIQ]*R.*", self.history) else "OTH"
            return "RSTO"
        if rs == CLOSED and os_ == CLOSED:
            return "SF"
        if os_ == CLOSED:
            return "SH" if r_in else "S2"
        if rs == CLOSED:
            return "SHR" if o_in else "S3"
        if os_ == SYN_SENT and rs == INACTIVE:
            return "S0"
        if os_ == ESTABLISHED and rs == ESTABLISHED:
            return "S1"
        return "OTH"
