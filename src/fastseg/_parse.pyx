# Bulk parser: link layer -> IP -> TCP header and options -> Segments columns.
#
# One pass over a packet batch with the GIL released.  Each packet gets exactly
# one Outcome code; a TCP segment is assembled as a Row on the stack and stored
# into the column arrays through raw pointers.  Every read is bounded by the packet's
# captured length: a malformed packet yields a code, never a read past caplen.
from libc.stdint cimport int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset

cimport numpy as cnp
import numpy as np

from fastseg._bytes cimport ld_be16, ld_be32, ld_le16, ld_le32
from fastseg._consts cimport (
    OUT_TCP, OUT_NOT_IP, OUT_NOT_TCP, OUT_LATER_FRAGMENT, OUT_FRAGMENT_NO_TCP_HDR,
    OUT_TRUNCATED, OUT_BAD_LINK_HEADER, OUT_UNSUPPORTED_LINKTYPE, OUT_BAD_IP_VERSION,
    OUT_BAD_IP_HEADER, OUT_BAD_IP_LENGTH, OUT_BAD_TCP_OFFSET, OUT_BAD_TUNNEL,
    OUT_EMPTY, CSUM_OK, CSUM_BAD, CSUM_UNVERIFIED, CSUM_NOT_APPLICABLE,
    LINKTYPE_NULL, LINKTYPE_ETHERNET, LINKTYPE_RAW_OLD, LINKTYPE_RAW_OLD2, LINKTYPE_RAW,
    LINKTYPE_LOOP, LINKTYPE_LINUX_SLL, LINKTYPE_IPV4, LINKTYPE_IPV6, LINKTYPE_LINUX_SLL2,
    LINKTYPE_PPP, LINKTYPE_PPP_HDLC, LINKTYPE_PPP_ETHER, LINKTYPE_C_HDLC, LINKTYPE_NFLOG,
    LINKTYPE_FDDI, LINKTYPE_IEEE802_11,
    OPTS_OK, OPTS_CUT, OPTS_BAD, OPT_MPTCP, OPT_MD5, OPT_AO, OPT_UTO, OPT_UNKNOWN,
    TUN_NONE, TUN_IP, TUN_GRE, TUN_VXLAN, TUN_GENEVE, TUN_TEREDO, TUN_GTPV1, TUN_AYIYA,
    ENC_VLAN, ENC_MPLS, ENC_PPPOE, ENC_FABRICPATH, ENC_PBB, ENC_LLC_SNAP, ENC_NFLOG, ENC_PPP,
    ENC_MPLS_PW, ENC_IPIP, ENC_GRE, ENC_TEB, ENC_ERSPAN, ENC_VXLAN, ENC_GENEVE, ENC_TEREDO,
    ENC_GTPV1, ENC_AYIYA, ENC_IEEE80211,
)

cdef extern from *:
    """
    #include "_csum.h"
    #include "_siphash.h"
    /* Both run for every segment; left to its own heuristics GCC keeps them
     * out of line, which cost about a sixth of the loop's time. */
    #if defined(__GNUC__)
    static inline uint64_t fs_csum_partial(const uint8_t *p, size_t len) __attribute__((always_inline));
    static inline uint64_t fs_flow_key(const uint8_t *src, uint16_t sport,
                                       const uint8_t *dst, uint16_t dport) __attribute__((always_inline));
    #endif
    """

cdef extern from "_csum.h" nogil:
    uint64_t fs_csum_partial(const uint8_t* p, size_t length)
    uint16_t fs_csum_fold(uint64_t s)
    int fs_csum_unfilled(uint16_t field, uint64_t pseudo)

cdef extern from "_siphash.h" nogil:
    uint64_t fs_flow_key(const uint8_t* src, uint16_t sport, const uint8_t* dst, uint16_t dport)

cnp.import_array()

# A VLAN stack deeper than this is not a real network (QinQ is 2, rarely 3).
cdef enum:
    MAX_VLAN_TAGS = 8
# IPv6 extension headers walked before the chain is declared bad; a legitimate
# packet carries a handful (RFC 8200 4.1 orders at most ~8 distinct kinds).
cdef enum:
    MAX_IPV6_EXT = 16

# BSD AF_INET6 differs per OS: Linux 10, FreeBSD 28, Darwin 30, NetBSD/OpenBSD 24.
cdef enum:
    AF_INET = 2


cdef struct Row:
    # One TCP segment, assembled on the stack so the parser never touches the
    # column pointers (a store through a uint8 column may alias anything, so
    # the compiler would reload them after every byte store).
    uint8_t src[16]
    uint8_t dst[16]
    uint64_t flow_key         # before hashing: the tunnel's salt (Carrier.vnet_salt)
    uint32_t tunnel_id
    uint32_t encap
    int64_t tsval
    int64_t tsecr
    uint32_t seq
    uint32_t ack
    uint32_t payload_len
    uint32_t l3_caplen
    uint32_t l3_off
    uint32_t l4_off
    int32_t ip_id
    int32_t mss
    uint16_t sport
    uint16_t dport
    uint16_t flags
    uint16_t window
    uint16_t checksum
    uint16_t urgent
    int16_t wscale
    int16_t tfo_cookie_len
    uint8_t ip_version
    uint8_t hdr_len
    uint8_t ttl
    uint8_t sack_perm
    uint8_t sack_blocks
    uint8_t checksum_status
    uint8_t ip_checksum_status
    uint8_t csum_unfilled     # bad, and the field holds the unfilled pseudo-header sum
    uint8_t fragment
    uint8_t opt_status
    uint8_t opt_other
    uint8_t tunnel


cdef struct Cols:
    int64_t* frame
    int64_t* ts_ns
    uint8_t* ip_version
    uint8_t* src
    uint8_t* dst
    uint16_t* sport
    uint16_t* dport
    uint32_t* seq
    uint32_t* ack
    uint16_t* flags
    uint8_t* hdr_len
    uint32_t* payload_len
    uint16_t* window
    uint16_t* checksum
    uint16_t* urgent
    uint8_t* ttl
    int32_t* ip_id
    int32_t* mss
    int16_t* wscale
    uint8_t* sack_perm
    uint8_t* sack_blocks
    int64_t* tsval
    int64_t* tsecr
    int16_t* tfo_cookie_len
    uint8_t* checksum_status
    uint8_t* ip_checksum_status
    uint8_t* csum_unfilled
    uint8_t* fragment
    uint8_t* opt_status
    uint8_t* opt_other
    uint8_t* tunnel
    uint32_t* tunnel_id
    uint32_t* encap
    uint64_t* flow_key
    int64_t* l3_off
    int64_t* l4_off
    uint32_t* l3_caplen


cdef inline bint is_vlan(uint16_t ethertype) noexcept nogil:
    return ethertype == 0x8100 or ethertype == 0x88A8 or ethertype == 0x9100


cdef inline int short_of(uint32_t need, uint32_t caplen, uint32_t wirelen, int otherwise) noexcept nogil:
    # Bytes missing from the capture but present on the wire were cut by the
    # snapshot length; missing on the wire too means the packet itself is bad.
    if wirelen >= need:
        return OUT_TRUNCATED
    return otherwise


include "_decap.pxi"


cdef inline int link_layer(const uint8_t* pkt, uint32_t caplen, uint16_t linktype, Carrier* c,
                           uint32_t* l3, int* version) noexcept nogil:
    """Find the innermost link layer's IP header: its offset in *l3 and the
    IP version the link layer announces in *version (0: let the version
    nibble decide)."""
    cdef uint32_t pos, family
    cdef uint16_t ethertype
    version[0] = 0
    if linktype == LINKTYPE_ETHERNET or linktype == LINKTYPE_LINUX_SLL:
        pos = 14 if linktype == LINKTYPE_ETHERNET else 16
        if caplen < pos:
            return short_of(pos, caplen, c.wire_end, OUT_BAD_LINK_HEADER)
        ethertype = ld_be16(pkt + pos - 2)
        if ethertype == 0x0800 or ethertype == 0x86DD:
            version[0] = 4 if ethertype == 0x0800 else 6
            l3[0] = pos
            return OUT_TCP
        return ether_chain(pkt, caplen, pos, ethertype, linktype == LINKTYPE_ETHERNET,
                           c, l3, version)
    elif linktype == LINKTYPE_LINUX_SLL2:
        if caplen < 20:
            return short_of(20, caplen, c.wire_end, OUT_BAD_LINK_HEADER)
        return ether_chain(pkt, caplen, 20, ld_be16(pkt), False, c, l3, version)
    elif linktype == LINKTYPE_NULL or linktype == LINKTYPE_LOOP:
        if caplen < 4:
            return short_of(4, caplen, c.wire_end, OUT_BAD_LINK_HEADER)
        if linktype == LINKTYPE_LOOP:
            family = ld_be32(pkt)
        else:
            # NULL stores the family in the capturing host's byte order; the
            # families are small, so a value above 16 bits means the other order.
            family = ld_le32(pkt)
            if family > 0xFFFF:
                family = ld_be32(pkt)
        l3[0] = 4
        if family == AF_INET:
            version[0] = 4
        elif family == 10 or family == 24 or family == 28 or family == 30:
            version[0] = 6
        else:
            return OUT_NOT_IP
        return OUT_TCP
    elif linktype == LINKTYPE_RAW or linktype == LINKTYPE_RAW_OLD or linktype == LINKTYPE_RAW_OLD2:
        l3[0] = 0
        return OUT_TCP
    elif linktype == LINKTYPE_IPV4:
        l3[0] = 0
        version[0] = 4
        return OUT_TCP
    elif linktype == LINKTYPE_IPV6:
        l3[0] = 0
        version[0] = 6
        return OUT_TCP
    return other_link(pkt, caplen, linktype, c, l3, version)


cdef uint8_t other_option_bit(uint8_t kind) noexcept nogil:
    if kind == 30:
        return OPT_MPTCP
    if kind == 19:
        return OPT_MD5
    if kind == 29:
        return OPT_AO
    if kind == 28:
        return OPT_UTO
    return OPT_UNKNOWN


cdef inline void tcp_options(const uint8_t* tcp, uint32_t hdr_len, uint32_t avail,
                             Row* r) noexcept nogil:
    """Decode the options of a ``hdr_len``-byte header of which ``avail``
    bytes were captured into *r, as far as they go; r.opt_status says
    whether the capture cut them (OPTS_CUT) or an option's length is below
    2, runs past the header or is wrong for its kind (OPTS_BAD, RFC 9293
    3.2; what follows a bad length is not read)."""
    cdef uint32_t i = 20, olen = 0, lim = hdr_len if avail >= hdr_len else avail
    cdef uint8_t kind
    r.mss = -1
    r.wscale = -1
    r.sack_perm = 0
    r.sack_blocks = 0
    r.tsval = -1
    r.tsecr = -1
    r.tfo_cookie_len = -1
    r.opt_status = OPTS_OK
    r.opt_other = 0
    while i < lim:
        kind = tcp[i]
        if kind == 0:
            return
        if kind == 1:
            i += 1
            continue
        if i + 1 >= lim:
            olen = 0
            break
        olen = tcp[i + 1]
        if olen < 2:
            r.opt_status = OPTS_BAD
            return
        if i + olen > lim:
            break
        # Known kinds with a wrong length are skipped by their length, as
        # Linux tcp_parse_options does, and flagged.
        if kind == 8:
            if olen == 10:
                r.tsval = ld_be32(tcp + i + 2)
                r.tsecr = ld_be32(tcp + i + 6)
            else:
                r.opt_status = OPTS_BAD
        elif kind == 2:
            if olen == 4:
                r.mss = ld_be16(tcp + i + 2)
            else:
                r.opt_status = OPTS_BAD
        elif kind == 3:
            if olen == 3:
                r.wscale = tcp[i + 2]
            else:
                r.opt_status = OPTS_BAD
        elif kind == 4:
            if olen == 2:
                r.sack_perm = 1
            else:
                r.opt_status = OPTS_BAD
        elif kind == 5:
            # Whole blocks count, as tshark counts them; a ragged length is bad.
            r.sack_blocks = <uint8_t>((olen - 2) // 8)
            if olen < 10 or (olen - 2) % 8:
                r.opt_status = OPTS_BAD
        elif kind == 34:
            r.tfo_cookie_len = <int16_t>(olen - 2)
        elif kind == 254 and olen >= 4 and ld_be16(tcp + i + 2) == 0xF989:
            # RFC 7413 experimental TFO: ExID 0xF989 before the cookie.
            r.tfo_cookie_len = <int16_t>(olen - 4)
        else:
            r.opt_other |= other_option_bit(kind)
        i += olen
    else:
        if i < hdr_len:
            r.opt_status = OPTS_CUT
        return
    # Stopped at ``lim`` inside an option (or before its kind byte): past the
    # header's end is a bad length; short of it, the capture ended.
    if lim == hdr_len or (olen >= 2 and i + olen > hdr_len) or (olen == 0 and i + 1 >= hdr_len):
        r.opt_status = OPTS_BAD
        return
    r.opt_status = OPTS_CUT
    # Like tshark, keep the fields whose bytes were captured.
    if i + 6 <= lim and tcp[i] == 8 and olen == 10:
        r.tsval = ld_be32(tcp + i + 2)


cdef inline int parse_packet(const uint8_t* pkt, uint32_t caplen, uint32_t wirelen,
                             uint16_t linktype, Row* r) noexcept nogil:
    """Classify one packet; for a TCP segment fill *r (all but frame, ts_ns
    and flow_key, which the caller owns; offsets relative to the packet)."""
    cdef uint32_t l3 = 0, ip_cap, ip_wire, ihl, total, l4, payload, tcp_cap, hdr_len
    cdef uint32_t pos, end, ext_len, i, opt_len
    cdef int version = 0, out, n_ext
    cdef uint16_t frag
    cdef uint8_t proto
    cdef bint fragment = False
    cdef const uint8_t* ip
    cdef const uint8_t* tcp
    cdef const uint8_t* ext
    cdef const uint8_t* pseudo_src
    cdef const uint8_t* pseudo_dst
    cdef uint64_t csum, pseudo
    cdef Carrier c

    if caplen == 0:
        return OUT_EMPTY
    if wirelen < caplen:
        wirelen = caplen
    carrier_init(&c, wirelen)
    out = link_layer(pkt, caplen, linktype, &c, &l3, &version)
    if out != OUT_TCP:
        return out
    while True:
        if caplen <= l3:
            return short_of(l3 + 1, caplen, c.wire_end, OUT_BAD_IP_HEADER)
        if c.wire_end <= l3:
            return OUT_BAD_IP_LENGTH
        ip = pkt + l3
        ip_cap = caplen - l3
        ip_wire = c.wire_end - l3
        if version == 0:
            version = ip[0] >> 4
            if version != 4 and version != 6:
                return OUT_BAD_IP_VERSION
        elif (ip[0] >> 4) != version:
            return OUT_BAD_IP_VERSION

        if version == 4:
            if ip_cap < 20:
                return short_of(20, ip_cap, ip_wire, OUT_BAD_IP_HEADER)
            ihl = (ip[0] & 0x0F) * 4
            if ihl < 20:
                return OUT_BAD_IP_HEADER
            if ip_cap < ihl:
                return short_of(ihl, ip_cap, ip_wire, OUT_BAD_IP_HEADER)
            total = ld_be16(ip + 2)
            if total == 0:
                # TCP segmentation offload leaves the total length zero: the
                # captured bytes are the datagram (as Zeek's IP analyzer takes
                # them when it ignores checksums).
                total = ip_cap
            # Bytes past the total length (Ethernet padding) are ignored.
            if total < ihl or total > ip_wire:
                return OUT_BAD_IP_LENGTH
            frag = ld_be16(ip + 6)
            if frag & 0x1FFF:
                return OUT_LATER_FRAGMENT
            proto = ip[9]
            fragment = (frag & 0x2000) != 0
            l4 = ihl
            payload = total - ihl
            pseudo_src = ip + 12
            pseudo_dst = ip + 16
        else:
            if ip_cap < 40:
                return short_of(40, ip_cap, ip_wire, OUT_BAD_IP_HEADER)
            payload = ld_be16(ip + 4)
            if payload == 0 and ip[6] != 59:
                # A jumbogram (RFC 2675) or a header chain with no room: jumbo
                # payload lengths are not followed.
                return OUT_BAD_IP_LENGTH
            if 40 + payload > ip_wire:
                return OUT_BAD_IP_LENGTH
            end = 40 + payload
            proto = ip[6]
            pos = 40
            n_ext = 0
            pseudo_src = ip + 8
            pseudo_dst = ip + 24
            while proto != 6:
                if proto == 0 or proto == 43 or proto == 60 or proto == 135 or proto == 139 or proto == 140 or proto == 51 or proto == 44:
                    n_ext += 1
                    if n_ext > MAX_IPV6_EXT:
                        return OUT_BAD_IP_HEADER
                    if pos + 8 > end:
                        return OUT_BAD_IP_HEADER
                    if pos + 8 > ip_cap:
                        return OUT_TRUNCATED
                    ext = ip + pos
                    if proto == 44:
                        if ld_be16(ext + 2) & 0xFFF8:
                            return OUT_LATER_FRAGMENT
                        if ext[3] & 1:
                            fragment = True
                        ext_len = 8
                    elif proto == 51:
                        # AH counts 4-byte words minus 2 (RFC 4302 2.2).
                        ext_len = (<uint32_t>ext[1] + 2) * 4
                    else:
                        ext_len = (<uint32_t>ext[1] + 1) * 8
                    if pos + ext_len > end:
                        return OUT_BAD_IP_HEADER
                    if pos + ext_len <= ip_cap:
                        # The upper-layer checksum covers the final
                        # destination and the home address (RFC 8200 8.1,
                        # RFC 6275 6.3), as Zeek's IPv6_Hdr_Chain has them.
                        if proto == 43 and ext[3] > 0:
                            if ext[2] == 0 and ext[1] >= 2:
                                pseudo_dst = ext + 8 + 16 * (ext[1] // 2 - 1)
                            elif (ext[2] == 2 or ext[2] == 4) and ext[1] >= 2:
                                pseudo_dst = ext + 8
                        elif proto == 60:
                            i = 2
                            while i + 2 <= ext_len:
                                if ext[i] == 0:
                                    i += 1
                                    continue
                                opt_len = ext[i + 1]
                                if ext[i] == 0xC9 and opt_len == 16 and i + 18 <= ext_len:
                                    pseudo_src = ext + i + 2
                                i += 2 + opt_len
                    proto = ext[0]
                    pos += ext_len
                else:
                    break
            l4 = pos
            payload = end - pos
            ihl = 0
        if proto == 6:
            break
        # 59 no next header, 50 ESP (opaque), ICMP, a fragment of a tunnel
        # packet (not reassembled), ...
        if fragment or not is_tunnel_proto(proto):
            return OUT_NOT_TCP
        out = ip_tunnel(pkt, caplen, ip, version, l3 + l4, l3 + l4 + payload, proto,
                        &c, &l3, &version)
        if out != OUT_TCP:
            return out

    # TCP header: l4 is within the captured bytes only if tcp_cap > 0.  A
    # segment is a segment once its fixed 20 bytes were captured; the
    # options go as far as the capture does.
    tcp_cap = ip_cap - l4 if ip_cap > l4 else 0
    tcp = ip + l4
    if fragment:
        if payload < 20 or tcp_cap < 20:
            return OUT_FRAGMENT_NO_TCP_HDR
        hdr_len = (tcp[12] >> 4) * 4
        if hdr_len < 20:
            return OUT_BAD_TCP_OFFSET
        if hdr_len > payload:
            return OUT_FRAGMENT_NO_TCP_HDR
    else:
        if payload < 20:
            return OUT_BAD_TCP_OFFSET
        if tcp_cap < 20:
            return OUT_TRUNCATED
        hdr_len = (tcp[12] >> 4) * 4
        if hdr_len < 20 or hdr_len > payload:
            return OUT_BAD_TCP_OFFSET
    tcp_options(tcp, hdr_len, tcp_cap, r)

    r.ip_version = <uint8_t>version
    if version == 4:
        memset(r.src, 0, 10)
        r.src[10] = 0xFF
        r.src[11] = 0xFF
        memcpy(r.src + 12, ip + 12, 4)
        memset(r.dst, 0, 10)
        r.dst[10] = 0xFF
        r.dst[11] = 0xFF
        memcpy(r.dst + 12, ip + 16, 4)
        r.ttl = ip[8]
        r.ip_id = ld_be16(ip + 4)
        if fs_csum_fold(fs_csum_partial(ip, ihl)) == 0xFFFF:
            r.ip_checksum_status = CSUM_OK
        else:
            r.ip_checksum_status = CSUM_BAD
    else:
        memcpy(r.src, ip + 8, 16)
        memcpy(r.dst, ip + 24, 16)
        r.ttl = ip[7]
        r.ip_id = -1
        r.ip_checksum_status = CSUM_NOT_APPLICABLE
    r.sport = ld_be16(tcp)
    r.dport = ld_be16(tcp + 2)
    r.seq = ld_be32(tcp + 4)
    r.ack = ld_be32(tcp + 8)
    # All twelve bits of the flags field: three reserved bits, NS, then the
    # eight of RFC 3168 (tshark's tcp.flags).
    r.flags = <uint16_t>(((tcp[12] & 0x0F) << 8) | tcp[13])
    r.hdr_len = <uint8_t>hdr_len
    r.payload_len = payload - hdr_len
    r.window = ld_be16(tcp + 14)
    r.checksum = ld_be16(tcp + 16)
    r.urgent = ld_be16(tcp + 18)
    r.fragment = fragment
    r.csum_unfilled = 0
    if fragment or tcp_cap < payload:
        r.checksum_status = CSUM_UNVERIFIED
    else:
        # Pseudo-header (RFC 9293 3.1 / RFC 8200 8.1) + segment.
        if version == 4:
            pseudo = (<uint64_t>ld_be16(ip + 12) + ld_be16(ip + 14) + ld_be16(ip + 16)
                      + ld_be16(ip + 18) + 6 + payload)
        else:
            if pseudo_src == ip + 8 and pseudo_dst == ip + 24:
                pseudo = fs_csum_partial(ip + 8, 32)
            else:
                pseudo = fs_csum_partial(pseudo_src, 16) + fs_csum_partial(pseudo_dst, 16)
            pseudo += 6 + (payload >> 16) + (payload & 0xFFFF)
        csum = pseudo + fs_csum_partial(tcp, payload)
        if fs_csum_fold(csum) == 0xFFFF:
            r.checksum_status = CSUM_OK
        else:
            # Recorded here, where the pseudo-header sum is at hand, for the
            # offload diagnosis (fastseg.checksum.ChecksumVerdict).
            r.checksum_status = CSUM_BAD
            r.csum_unfilled = fs_csum_unfilled(r.checksum, pseudo)
    r.l3_caplen = ip_cap
    r.l3_off = l3
    r.l4_off = l3 + l4
    r.tunnel = c.tunnel
    r.tunnel_id = c.tunnel_id
    r.encap = c.encap
    r.flow_key = c.vnet_salt
    return OUT_TCP


cdef inline void store_row(Cols* c, Py_ssize_t k, const Row* r, int64_t frame,
                           int64_t ts_ns, int64_t pkt_off) noexcept nogil:
    c.frame[k] = frame
    c.ts_ns[k] = ts_ns
    c.ip_version[k] = r.ip_version
    memcpy(c.src + 16 * k, r.src, 16)
    memcpy(c.dst + 16 * k, r.dst, 16)
    c.sport[k] = r.sport
    c.dport[k] = r.dport
    c.seq[k] = r.seq
    c.ack[k] = r.ack
    c.flags[k] = r.flags
    c.hdr_len[k] = r.hdr_len
    c.payload_len[k] = r.payload_len
    c.window[k] = r.window
    c.checksum[k] = r.checksum
    c.urgent[k] = r.urgent
    c.ttl[k] = r.ttl
    c.ip_id[k] = r.ip_id
    c.mss[k] = r.mss
    c.wscale[k] = r.wscale
    c.sack_perm[k] = r.sack_perm
    c.sack_blocks[k] = r.sack_blocks
    c.tsval[k] = r.tsval
    c.tsecr[k] = r.tsecr
    c.tfo_cookie_len[k] = r.tfo_cookie_len
    c.checksum_status[k] = r.checksum_status
    c.ip_checksum_status[k] = r.ip_checksum_status
    c.csum_unfilled[k] = r.csum_unfilled
    c.fragment[k] = r.fragment
    # Zero-filled columns (segments.ZEROED_COLUMNS): written only when set,
    # so plain traffic never touches their pages.
    if r.opt_status:
        c.opt_status[k] = r.opt_status
    if r.opt_other:
        c.opt_other[k] = r.opt_other
    if r.encap:
        c.encap[k] = r.encap
        c.tunnel[k] = r.tunnel
        c.tunnel_id[k] = r.tunnel_id
    c.flow_key[k] = r.flow_key     # the salt; hash_rows mixes in the 4-tuple
    c.l3_off[k] = pkt_off + r.l3_off
    c.l4_off[k] = pkt_off + r.l4_off
    c.l3_caplen[k] = r.l3_caplen


# Flow keys are hashed a block of rows at a time, while the rows are still in
# L1: independent SipHash chains back to back overlap in the out-of-order
# core, where one chain per packet between parses would stall it.
cdef enum:
    HASH_BLOCK = 32


cdef inline void hash_rows(Cols* c, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil:
    cdef Py_ssize_t j
    for j in range(lo, hi):
        # An overlay's virtual network id (stored by store_row) keeps equal
        # inner 4-tuples of different overlays apart; 0 everywhere else.
        c.flow_key[j] ^= fs_flow_key(c.src + 16 * j, c.sport[j], c.dst + 16 * j, c.dport[j])


cdef inline void* _ptr(object arr):
    return cnp.PyArray_DATA(<cnp.ndarray>arr)


def parse_batch(const uint8_t[::1] data, const int64_t[::1] offset,
                const uint32_t[::1] caplen, const uint32_t[::1] wirelen,
                const int64_t[::1] ts_ns, const uint16_t[::1] linktype,
                int64_t first_frame=1):
    """Parse a packet batch.

    Returns ``(columns, outcome)``: a dict with every Segments column (public
    and hidden) for the TCP rows, in packet order, and one uint8 Outcome code
    per packet.  ``_l3_off`` / ``_l4_off`` are offsets into ``data``.
    """
    from fastseg import segments

    cdef Py_ssize_t n = offset.shape[0]
    if caplen.shape[0] != n or wirelen.shape[0] != n or ts_ns.shape[0] != n or linktype.shape[0] != n:
        raise ValueError("offset, caplen, wirelen, ts_ns and linktype must have the same length")
    outcome_arr = np.empty(n, dtype=np.uint8)
    cols = segments.empty_columns(n)
    if n == 0:
        return cols, outcome_arr
    cdef Cols c
    c.frame = <int64_t*>_ptr(cols["frame"])
    c.ts_ns = <int64_t*>_ptr(cols["ts_ns"])
    c.ip_version = <uint8_t*>_ptr(cols["ip_version"])
    c.src = <uint8_t*>_ptr(cols["src"])
    c.dst = <uint8_t*>_ptr(cols["dst"])
    c.sport = <uint16_t*>_ptr(cols["sport"])
    c.dport = <uint16_t*>_ptr(cols["dport"])
    c.seq = <uint32_t*>_ptr(cols["seq"])
    c.ack = <uint32_t*>_ptr(cols["ack"])
    c.flags = <uint16_t*>_ptr(cols["flags"])
    c.hdr_len = <uint8_t*>_ptr(cols["hdr_len"])
    c.payload_len = <uint32_t*>_ptr(cols["payload_len"])
    c.window = <uint16_t*>_ptr(cols["window"])
    c.checksum = <uint16_t*>_ptr(cols["checksum"])
    c.urgent = <uint16_t*>_ptr(cols["urgent"])
    c.ttl = <uint8_t*>_ptr(cols["ttl"])
    c.ip_id = <int32_t*>_ptr(cols["ip_id"])
    c.mss = <int32_t*>_ptr(cols["mss"])
    c.wscale = <int16_t*>_ptr(cols["wscale"])
    c.sack_perm = <uint8_t*>_ptr(cols["sack_perm"])
    c.sack_blocks = <uint8_t*>_ptr(cols["sack_blocks"])
    c.tsval = <int64_t*>_ptr(cols["tsval"])
    c.tsecr = <int64_t*>_ptr(cols["tsecr"])
    c.tfo_cookie_len = <int16_t*>_ptr(cols["tfo_cookie_len"])
    c.checksum_status = <uint8_t*>_ptr(cols["checksum_status"])
    c.ip_checksum_status = <uint8_t*>_ptr(cols["ip_checksum_status"])
    c.csum_unfilled = <uint8_t*>_ptr(cols["_csum_unfilled"])
    c.fragment = <uint8_t*>_ptr(cols["fragment"])
    c.opt_status = <uint8_t*>_ptr(cols["opt_status"])
    c.opt_other = <uint8_t*>_ptr(cols["opt_other"])
    c.tunnel = <uint8_t*>_ptr(cols["tunnel"])
    c.tunnel_id = <uint32_t*>_ptr(cols["tunnel_id"])
    c.encap = <uint32_t*>_ptr(cols["encap"])
    c.flow_key = <uint64_t*>_ptr(cols["flow_key"])
    c.l3_off = <int64_t*>_ptr(cols["_l3_off"])
    c.l4_off = <int64_t*>_ptr(cols["_l4_off"])
    c.l3_caplen = <uint32_t*>_ptr(cols["_l3_caplen"])

    cdef uint8_t[::1] outcome = outcome_arr
    cdef const uint8_t* base = &data[0] if data.shape[0] > 0 else NULL
    cdef int64_t data_len = data.shape[0]
    cdef Py_ssize_t i, k = 0, bad_bounds = -1, hashed = 0
    cdef int out
    cdef Row row
    with nogil:
        for i in range(n):
            if offset[i] < 0 or offset[i] + <int64_t>caplen[i] > data_len:
                bad_bounds = i
                break
            out = parse_packet(base + offset[i], caplen[i], wirelen[i], linktype[i], &row)
            outcome[i] = <uint8_t>out
            if out == OUT_TCP:
                store_row(&c, k, &row, first_frame + i, ts_ns[i], offset[i])
                k += 1
                if k - hashed == HASH_BLOCK:
                    hash_rows(&c, hashed, k)
                    hashed = k
        hash_rows(&c, hashed, k)
    if bad_bounds >= 0:
        raise ValueError(f"packet {bad_bounds}: offset {offset[bad_bounds]} + caplen "
                         f"{caplen[bad_bounds]} lies outside the {data_len}-byte buffer")
    if k < n:
        # Keep a trimmed view when most packets are TCP; copy out otherwise so
        # a mostly non-TCP batch does not pin n rows of memory.
        if 2 * k >= n:
            cols = {name: col[:k] for name, col in cols.items()}
        else:
            cols = {name: col[:k].copy() for name, col in cols.items()}
    return cols, outcome_arr
