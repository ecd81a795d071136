# Decapsulation down to the innermost IP header, included by _parse.pyx.
#
# Link-level carriers (VLAN, MPLS, PPPoE, FabricPath, PBB, LLC/SNAP, PPP, 802.11) are
# walked by ether_chain; IP-level tunnels (IP-in-IP, GRE, VXLAN, Geneve,
# Teredo, GTPv1-U, AYIYA) by ip_tunnel, which the IP parser calls when a
# packet's protocol is one of them and loops back with the inner header.  The
# formats and heuristics follow Zeek's packet analyzers
# (src/packet_analysis/protocol/*) and Wireshark's dissectors.  Every layer
# counts against MAX_LAYERS, so a crafted loop of headers ends in
# OUT_BAD_TUNNEL; every read is checked against caplen first.

cdef enum:
    MAX_LAYERS = 16          # link + tunnel layers crossed before a packet is called bad
    MAX_MPLS_LABELS = 16
    MAX_GTP_EXT = 8
    # Well-known UDP ports of the tunnels Zeek and Wireshark decode by port.
    PORT_VXLAN = 4789
    PORT_GENEVE = 6081
    PORT_TEREDO = 3544
    PORT_GTPV1U = 2152
    PORT_AYIYA = 5072
    PORT_GRE_UDP = 4754      # GRE-in-UDP, RFC 8086


cdef struct Carrier:
    uint64_t vnet_salt       # mixed into the flow key: the outermost VXLAN/Geneve VNI, 0 if none
    uint32_t tunnel_id       # 0 when not tunnelled
    uint32_t encap           # EncapBit of every layer crossed
    uint32_t wire_end        # bytes of the frame the current layer may claim (lengths of outer headers)
    uint8_t tunnel           # TunnelKind of the outermost IP tunnel
    uint8_t layers


cdef inline void carrier_init(Carrier* c, uint32_t wirelen) noexcept nogil:
    c.vnet_salt = 0
    c.tunnel_id = 0
    c.encap = 0
    c.wire_end = wirelen
    c.tunnel = TUN_NONE
    c.layers = 0


cdef inline uint16_t ppp_ethertype(uint16_t proto) noexcept nogil:
    """The ethertype of a PPP protocol number (RFC 1332, 5072, 3032), 0 if not IP/MPLS."""
    if proto == 0x0021:
        return 0x0800
    if proto == 0x0057:
        return 0x86DD
    if proto == 0x0281 or proto == 0x0283:
        return 0x8847
    return 0


cdef inline int cut(uint32_t need, uint32_t caplen, const Carrier* c) noexcept nogil:
    # A header that the capture cut but the frame carried is truncated; one
    # the frame itself is too short for is a bad encapsulation.
    return short_of(need, caplen, c.wire_end, OUT_BAD_TUNNEL)


cdef int ether_chain(const uint8_t* pkt, uint32_t caplen, uint32_t pos, uint16_t ethertype,
                     bint ethernet, Carrier* c, uint32_t* l3, int* version) noexcept nogil:
    """Follow ethertypes from ``pos`` (just past the field holding
    ``ethertype``) to an IP header.  ``ethernet``: the field is an Ethernet
    type/length field, so values <= 1500 are 802.3 lengths (LLC/SNAP)."""
    cdef uint32_t labels, tags = 0
    while True:
        c.layers += 1
        if c.layers > MAX_LAYERS:
            return OUT_BAD_TUNNEL
        if ethertype == 0x0800 or ethertype == 0x86DD:
            version[0] = 4 if ethertype == 0x0800 else 6
            l3[0] = pos
            return OUT_TCP
        if is_vlan(ethertype):
            tags += 1
            if tags > MAX_VLAN_TAGS:
                return OUT_BAD_LINK_HEADER
            if caplen < pos + 4:
                return short_of(pos + 4, caplen, c.wire_end, OUT_BAD_LINK_HEADER)
            c.encap |= ENC_VLAN
            ethertype = ld_be16(pkt + pos + 2)
            pos += 4
            ethernet = True
        elif ethertype == 0x8847 or ethertype == 0x8848:
            # Label stack up to the bottom-of-stack bit (RFC 3032), then the
            # payload by its first nibble, as Zeek and Wireshark guess it.
            c.encap |= ENC_MPLS
            labels = 0
            while True:
                labels += 1
                if labels > MAX_MPLS_LABELS:
                    return OUT_BAD_TUNNEL
                if caplen < pos + 4:
                    return cut(pos + 4, caplen, c)
                pos += 4
                if pkt[pos - 2] & 1:
                    break
            if caplen <= pos:
                return cut(pos + 1, caplen, c)
            if (pkt[pos] >> 4) == 4 or (pkt[pos] >> 4) == 6:
                version[0] = pkt[pos] >> 4
                l3[0] = pos
                return OUT_TCP
            if (pkt[pos] >> 4) != 0:
                return OUT_NOT_IP
            # Ethernet pseudowire behind its control word (RFC 4448 4.6).
            if caplen < pos + 18:
                return cut(pos + 18, caplen, c)
            c.encap |= ENC_MPLS_PW
            ethertype = ld_be16(pkt + pos + 16)
            pos += 18
            ethernet = True
        elif ethertype == 0x8864:
            # PPPoE session (RFC 2516): ver/type, code, session id, length, PPP protocol.
            if caplen < pos + 8:
                return cut(pos + 8, caplen, c)
            # Its length field is not trusted to bound the IP packet: Zeek
            # and Wireshark take the IP length against the frame.
            c.encap |= ENC_PPPOE
            ethertype = ppp_ethertype(ld_be16(pkt + pos + 6))
            if ethertype == 0:
                return OUT_NOT_IP
            pos += 8
            ethernet = False
        elif ethertype == 0x8903:
            # Cisco FabricPath: FTag/TTL, then the classic frame's MACs and type.
            if caplen < pos + 16:
                return short_of(pos + 16, caplen, c.wire_end, OUT_BAD_LINK_HEADER)
            c.encap |= ENC_FABRICPATH
            ethertype = ld_be16(pkt + pos + 14)
            pos += 16
            ethernet = True
        elif ethertype == 0x88E7:
            # 802.1ah PBB: I-TAG, then the customer frame's MACs and type.
            if caplen < pos + 18:
                return short_of(pos + 18, caplen, c.wire_end, OUT_BAD_LINK_HEADER)
            c.encap |= ENC_PBB
            ethertype = ld_be16(pkt + pos + 16)
            pos += 18
            ethernet = True
        elif ethertype <= 1500 and ethernet:
            # 802.3 length; only LLC/SNAP (AA AA 03, OUI, type) carries IP.
            if caplen < pos + 3:
                return OUT_NOT_IP
            if pkt[pos] != 0xAA or pkt[pos + 1] != 0xAA or pkt[pos + 2] != 0x03:
                return OUT_NOT_IP
            if caplen < pos + 8:
                return short_of(pos + 8, caplen, c.wire_end, OUT_BAD_LINK_HEADER)
            c.encap |= ENC_LLC_SNAP
            ethertype = ld_be16(pkt + pos + 6)
            pos += 8
            ethernet = False
        else:
            return OUT_NOT_IP


cdef inline int ethernet_at(const uint8_t* pkt, uint32_t caplen, uint32_t pos, Carrier* c,
                            uint32_t* l3, int* version) noexcept nogil:
    """An Ethernet frame carried inside a tunnel, starting at ``pos``."""
    if caplen < pos + 14:
        return cut(pos + 14, caplen, c)
    return ether_chain(pkt, caplen, pos + 14, ld_be16(pkt + pos + 12), True, c, l3, version)


cdef int ieee80211_at(const uint8_t* pkt, uint32_t caplen, uint32_t pos, Carrier* c,
                      uint32_t* l3, int* version) noexcept nogil:
    """An 802.11 frame at ``pos``, as Zeek's IEEE802_11 analyzer reads it: a
    data frame that carries data (management, control and null frames are
    not IP), a fourth address when both DS bits are set, the QoS control
    field, then LLC/SNAP with a zero OUI.  Protected frames are opaque.  Of
    an A-MSDU the first subframe is taken (one segment per frame)."""
    cdef uint32_t hl = 24
    cdef uint8_t fc
    cdef bint amsdu = False
    if caplen < pos + hl + 1:
        return cut(pos + hl + 1, caplen, c)
    fc = pkt[pos]
    if not ((fc >> 2) & 0x02) or ((fc >> 4) & 0x04):
        return OUT_NOT_IP
    if (pkt[pos + 1] & 0x03) == 0x03:
        hl += 6
    if (fc >> 4) & 0x08:
        if caplen < pos + hl + 2:
            return cut(pos + hl + 2, caplen, c)
        amsdu = (pkt[pos + hl] & 0x80) != 0
        hl += 2
    if pkt[pos + 1] & 0x40:
        return OUT_NOT_IP
    c.encap |= ENC_IEEE80211
    pos += hl
    if amsdu:
        # Subframe header: destination, source, length of what follows.
        if caplen < pos + 14:
            return cut(pos + 14, caplen, c)
        pos += 14
    if caplen < pos + 8:
        return cut(pos + 8, caplen, c)
    if (pkt[pos] != 0xAA or pkt[pos + 1] != 0xAA or pkt[pos + 2] != 0x03
            or pkt[pos + 3] != 0 or pkt[pos + 4] != 0 or pkt[pos + 5] != 0):
        return OUT_NOT_IP
    return ether_chain(pkt, caplen, pos + 8, ld_be16(pkt + pos + 6), False, c, l3, version)


cdef inline int ip_at(const uint8_t* pkt, uint32_t caplen, uint32_t pos, Carrier* c,
                      uint32_t* l3, int* version) noexcept nogil:
    """An IP packet of either version at ``pos`` (by its version nibble)."""
    if caplen <= pos:
        return cut(pos + 1, caplen, c)
    if (pkt[pos] >> 4) != 4 and (pkt[pos] >> 4) != 6:
        return OUT_NOT_IP
    version[0] = pkt[pos] >> 4
    l3[0] = pos
    return OUT_TCP


cdef void tunnel_note(Carrier* c, uint8_t kind, uint32_t bit, const uint8_t* ip, int ip_version,
                      uint32_t vni, bint has_vni=False) noexcept nogil:
    """Record a tunnel layer; the outermost one names the segment's tunnel
    and its id: a direction-free hash of the outer addresses, the kind and
    the virtual network id.  Only a virtual network id (``has_vni``) goes
    into the flow key, so equal inner 4-tuples of different overlays stay
    apart, while a connection whose tunnel changes (other outer endpoints
    per direction or over time, or a path in and out of the tunnel) stays
    one, as Zeek keys connections by the inner 5-tuple alone and only notes
    the tunnel change (Connection::CheckEncapsulation)."""
    cdef uint8_t a[16]
    cdef uint8_t b[16]
    cdef uint64_t h
    c.encap |= bit
    if c.tunnel != TUN_NONE:
        return
    c.tunnel = kind
    if ip_version == 4:
        memset(a, 0, 10)
        memset(b, 0, 10)
        a[10] = 0xFF
        a[11] = 0xFF
        b[10] = 0xFF
        b[11] = 0xFF
        memcpy(a + 12, ip + 12, 4)
        memcpy(b + 12, ip + 16, 4)
    else:
        memcpy(a, ip + 8, 16)
        memcpy(b, ip + 24, 16)
    h = fs_flow_key(a, kind, b, kind) ^ (<uint64_t>vni * <uint64_t>0xC2B2AE3D27D4EB4F)
    c.tunnel_id = <uint32_t>(h ^ (h >> 32))
    if c.tunnel_id == 0:
        c.tunnel_id = 1
    if has_vni:
        c.vnet_salt = (<uint64_t>vni + 1) * <uint64_t>0x9E3779B97F4A7C15


cdef int gre_payload(const uint8_t* pkt, uint32_t caplen, uint32_t pos, Carrier* c,
                     const uint8_t* ip, int ip_version, uint32_t* l3, int* version) noexcept nogil:
    """GRE (RFC 2784/2890) and enhanced GRE (PPTP, RFC 2637) at ``pos``."""
    cdef uint16_t flags, ptype, proto
    cdef uint32_t glen, gre_ver
    if caplen < pos + 4:
        return cut(pos + 4, caplen, c)
    flags = ld_be16(pkt + pos)
    ptype = ld_be16(pkt + pos + 2)
    gre_ver = flags & 7
    # Source routing (RFC 1701) and unknown flag bits are not decoded, as in Zeek.
    if gre_ver > 1 or (flags & 0x4000) or (flags & 0x0078):
        return OUT_BAD_TUNNEL
    glen = 4
    if flags & 0x8000:
        glen += 4
    if flags & 0x2000:
        glen += 4
    if flags & 0x1000:
        glen += 4
    if gre_ver == 1 and (flags & 0x0080):
        glen += 4
    if caplen < pos + glen:
        return cut(pos + glen, caplen, c)
    tunnel_note(c, TUN_GRE, ENC_GRE, ip, ip_version, 0)
    pos += glen
    if gre_ver == 1:
        if ptype != 0x880B:
            return OUT_BAD_TUNNEL
        if caplen < pos + 2:
            return cut(pos + 2, caplen, c)
        if pkt[pos] == 0xFF and pkt[pos + 1] == 0x03:
            pos += 2
            if caplen < pos + 2:
                return cut(pos + 2, caplen, c)
        c.encap |= ENC_PPP
        if pkt[pos] & 1:
            # Protocol-field compression (RFC 1661 6.5): one byte.
            proto = pkt[pos]
            pos += 1
        else:
            proto = ld_be16(pkt + pos)
            pos += 2
        ptype = ppp_ethertype(proto)
        if ptype == 0:
            return OUT_NOT_IP
        return ether_chain(pkt, caplen, pos, ptype, False, c, l3, version)
    if ptype == 0x6558:
        c.encap |= ENC_TEB
        return ethernet_at(pkt, caplen, pos, c, l3, version)
    if ptype == 0x88BE:
        # ERSPAN type II has an 8-byte header (and GRE sequence numbers);
        # type I has neither.
        c.encap |= ENC_ERSPAN
        if flags & 0x1000:
            pos += 8
        return ethernet_at(pkt, caplen, pos, c, l3, version)
    if ptype == 0x22EB:
        # ERSPAN type III: 12-byte header, then an 8-byte platform
        # sub-header when its O bit is set.
        c.encap |= ENC_ERSPAN
        if caplen < pos + 12:
            return cut(pos + 12, caplen, c)
        pos += 20 if (pkt[pos + 11] & 1) else 12
        return ethernet_at(pkt, caplen, pos, c, l3, version)
    if (((ptype & 0x8200) == 0x8200 and (ptype & 0x0F) == 0)
            or ((ptype & 0x8300) == 0x8300 and (ptype & 0x0F) == 0 and ptype <= 0x8370)
            or ptype == 0x9000):
        # Aruba's access points tunnel 802.11 frames to their controller
        # under these protocol types (Zeek's GRE analyzer).
        return ieee80211_at(pkt, caplen, pos, c, l3, version)
    return ether_chain(pkt, caplen, pos, ptype, False, c, l3, version)


cdef int udp_tunnel(const uint8_t* pkt, uint32_t caplen, uint32_t pos, uint16_t port, Carrier* c,
                    const uint8_t* ip, int ip_version, uint32_t* l3, int* version) noexcept nogil:
    """The UDP payload at ``pos`` on a tunnel's well-known ``port``."""
    cdef uint32_t hl, elen, n
    cdef uint16_t ptype
    cdef uint8_t next_ext, kind
    if port == PORT_VXLAN:
        # RFC 7348: flags, reserved, 24-bit VNI, reserved; then Ethernet.
        if caplen < pos + 8:
            return cut(pos + 8, caplen, c)
        tunnel_note(c, TUN_VXLAN, ENC_VXLAN, ip, ip_version, ld_be32(pkt + pos + 4) >> 8, True)
        return ethernet_at(pkt, caplen, pos + 8, c, l3, version)
    if port == PORT_GENEVE:
        # RFC 8926: version, option length (4-byte words), protocol type, VNI.
        if caplen < pos + 8:
            return cut(pos + 8, caplen, c)
        if pkt[pos] >> 6:
            return OUT_BAD_TUNNEL
        hl = 8 + (pkt[pos] & 0x3F) * 4
        ptype = ld_be16(pkt + pos + 2)
        tunnel_note(c, TUN_GENEVE, ENC_GENEVE, ip, ip_version, ld_be32(pkt + pos + 4) >> 8, True)
        if pos + hl > c.wire_end:
            return OUT_BAD_TUNNEL
        if ptype == 0x6558:
            return ethernet_at(pkt, caplen, pos + hl, c, l3, version)
        return ether_chain(pkt, caplen, pos + hl, ptype, False, c, l3, version)
    if port == PORT_TEREDO:
        # RFC 4380 5.1.1: optional authentication then origin indication
        # headers before the IPv6 packet; anything else on the port is UDP.
        if caplen < pos + 2:
            return OUT_NOT_TCP
        if pkt[pos] == 0 and pkt[pos + 1] == 1:
            if caplen < pos + 4:
                return OUT_NOT_TCP
            pos += 13 + <uint32_t>pkt[pos + 2] + pkt[pos + 3]
            if caplen < pos + 2:
                return OUT_NOT_TCP
        if pkt[pos] == 0 and pkt[pos + 1] == 0:
            pos += 8
        if caplen <= pos or (pkt[pos] >> 4) != 6 or pos + 40 > c.wire_end:
            return OUT_NOT_TCP
        tunnel_note(c, TUN_TEREDO, ENC_TEREDO, ip, ip_version, 0)
        version[0] = 6
        l3[0] = pos
        return OUT_TCP
    if port == PORT_GTPV1U:
        # 3GPP TS 29.281: version 1, PT 1; only G-PDUs (type 255) carry user
        # packets.  Sequence/N-PDU/extension flags add 4 bytes, then a chain
        # of extension headers (length in 4-byte units, next type last).
        if caplen < pos + 8:
            return cut(pos + 8, caplen, c)
        if (pkt[pos] >> 5) != 1 or not (pkt[pos] & 0x10):
            return OUT_BAD_TUNNEL
        if pkt[pos + 1] != 0xFF:
            return OUT_NOT_TCP
        hl = 8
        if pkt[pos] & 0x07:
            if caplen < pos + 12:
                return cut(pos + 12, caplen, c)
            hl = 12
            next_ext = pkt[pos + 11]
            n = 0
            while next_ext != 0:
                n += 1
                if n > MAX_GTP_EXT or caplen < pos + hl + 1:
                    return OUT_BAD_TUNNEL if n > MAX_GTP_EXT else cut(pos + hl + 1, caplen, c)
                elen = <uint32_t>pkt[pos + hl] * 4
                if elen == 0:
                    return OUT_BAD_TUNNEL
                if caplen < pos + hl + elen:
                    return cut(pos + hl + elen, caplen, c)
                next_ext = pkt[pos + hl + elen - 1]
                hl += elen
        tunnel_note(c, TUN_GTPV1, ENC_GTPV1, ip, ip_version, 0)
        return ip_at(pkt, caplen, pos + hl, c, l3, version)
    if port == PORT_AYIYA:
        # AYIYA: identity length as a power of two, signature length in
        # 4-byte words, op code 1 = forward, next header 4 or 41.
        if caplen < pos + 8 or pkt[pos + 1] != 0x52 or pkt[pos + 2] != 0x11:
            return OUT_NOT_TCP
        hl = 8 + (<uint32_t>1 << (pkt[pos] >> 4)) + (pkt[pos + 1] >> 4) * 4
        if pkt[pos + 3] != 4 and pkt[pos + 3] != 41:
            return OUT_NOT_TCP
        tunnel_note(c, TUN_AYIYA, ENC_AYIYA, ip, ip_version, 0)
        if pos + hl > c.wire_end:
            return OUT_BAD_TUNNEL
        if caplen < pos + hl + 1:
            return cut(pos + hl + 1, caplen, c)
        if (pkt[pos + hl] >> 4) != (4 if pkt[pos + 3] == 4 else 6):
            return OUT_BAD_IP_VERSION
        version[0] = pkt[pos + hl] >> 4
        l3[0] = pos + hl
        return OUT_TCP
    return gre_payload(pkt, caplen, pos, c, ip, ip_version, l3, version)


cdef inline bint is_tunnel_proto(uint8_t proto) noexcept nogil:
    return proto == 4 or proto == 41 or proto == 47 or proto == 17


cdef int ip_tunnel(const uint8_t* pkt, uint32_t caplen, const uint8_t* ip, int ip_version,
                   uint32_t l4, uint32_t end, uint8_t proto, Carrier* c,
                   uint32_t* l3, int* version) noexcept nogil:
    """The packet carried by an IP packet of protocol ``proto`` whose
    payload is ``[l4, end)`` of the frame (offsets in ``pkt``)."""
    cdef uint16_t sport, dport, ulen, port
    c.layers += 1
    if c.layers > MAX_LAYERS:
        return OUT_BAD_TUNNEL
    # An inner packet never extends past its outer packet's payload.
    c.wire_end = end
    if proto == 4 or proto == 41:
        tunnel_note(c, TUN_IP, ENC_IPIP, ip, ip_version, 0)
        version[0] = 4 if proto == 4 else 6
        l3[0] = l4
        return OUT_TCP
    if proto == 47:
        return gre_payload(pkt, caplen, l4, c, ip, ip_version, l3, version)
    # UDP: only the tunnels' well-known ports, destination port first.
    if caplen < l4 + 8:
        return OUT_NOT_TCP
    sport = ld_be16(pkt + l4)
    dport = ld_be16(pkt + l4 + 2)
    ulen = ld_be16(pkt + l4 + 4)
    if ulen >= 8 and l4 + ulen < end:
        c.wire_end = l4 + ulen
    if is_udp_tunnel_port(dport):
        port = dport
    elif is_udp_tunnel_port(sport):
        port = sport
    elif teredo_like(pkt, caplen, l4 + 8, c.wire_end):
        # Teredo relays use any port: Zeek finds them by content.
        port = PORT_TEREDO
    else:
        return OUT_NOT_TCP
    return udp_tunnel(pkt, caplen, l4 + 8, port, c, ip, ip_version, l3, version)


cdef inline bint teredo_like(const uint8_t* pkt, uint32_t caplen, uint32_t pos,
                             uint32_t end) noexcept nogil:
    """A UDP payload that is exactly one IPv6 packet, after an optional
    origin indication: what Zeek's Teredo detection accepts on any port."""
    if caplen >= pos + 8 and pkt[pos] == 0 and pkt[pos + 1] == 0:
        pos += 8
    if caplen < pos + 6 or (pkt[pos] >> 4) != 6:
        return False
    return pos + 40 + <uint32_t>ld_be16(pkt + pos + 4) == end


cdef inline bint is_udp_tunnel_port(uint16_t port) noexcept nogil:
    return (port == PORT_VXLAN or port == PORT_GENEVE or port == PORT_TEREDO
            or port == PORT_GTPV1U or port == PORT_AYIYA or port == PORT_GRE_UDP)


cdef int nflog_payload(const uint8_t* pkt, uint32_t caplen, Carrier* c, uint32_t* l3,
                       int* version) noexcept nogil:
    """LINKTYPE_NFLOG: family, version 0, resource id, then TLVs (length and
    type in the capturing host's order, little-endian here as in Zeek and
    Wireshark's default) padded to 4 bytes; type 9 holds the packet."""
    cdef uint32_t pos = 4, tlv_len, tlv_type, n = 0
    if caplen < 4:
        return short_of(4, caplen, c.wire_end, OUT_BAD_LINK_HEADER)
    if pkt[1] != 0:
        return OUT_BAD_LINK_HEADER
    c.encap |= ENC_NFLOG
    while True:
        n += 1
        if n > 64:
            return OUT_BAD_LINK_HEADER
        if caplen < pos + 4:
            return short_of(pos + 4, caplen, c.wire_end, OUT_BAD_LINK_HEADER)
        tlv_len = ld_le16(pkt + pos)
        tlv_type = ld_le16(pkt + pos + 2)
        if tlv_len < 4:
            return OUT_BAD_LINK_HEADER
        if tlv_type == 9:
            if pos + tlv_len < c.wire_end:
                c.wire_end = pos + tlv_len
            pos += 4
            break
        pos += (tlv_len + 3) & ~<uint32_t>3
    if pkt[0] == AF_INET:
        version[0] = 4
    elif pkt[0] == 10:
        version[0] = 6
    else:
        return OUT_NOT_IP
    l3[0] = pos
    return OUT_TCP


cdef int other_link(const uint8_t* pkt, uint32_t caplen, uint16_t linktype, Carrier* c,
                    uint32_t* l3, int* version) noexcept nogil:
    """The link types decoded beyond the common ones: PPP, PPP in HDLC
    framing, PPPoE without Ethernet, Cisco HDLC, NFLOG, FDDI, 802.11."""
    cdef uint32_t pos = 0
    cdef uint16_t ethertype
    if linktype == LINKTYPE_NFLOG:
        return nflog_payload(pkt, caplen, c, l3, version)
    if linktype == LINKTYPE_FDDI:
        # Frame control, destination, source, then 802.2 LLC (SNAP for IP).
        if caplen < 13:
            return short_of(13, caplen, c.wire_end, OUT_BAD_LINK_HEADER)
        return ether_chain(pkt, caplen, 13, 1500, True, c, l3, version)
    if linktype == LINKTYPE_IEEE802_11:
        return ieee80211_at(pkt, caplen, 0, c, l3, version)
    if linktype == LINKTYPE_C_HDLC:
        if caplen < 4:
            return short_of(4, caplen, c.wire_end, OUT_BAD_LINK_HEADER)
        return ether_chain(pkt, caplen, 4, ld_be16(pkt + 2), False, c, l3, version)
    if linktype == LINKTYPE_PPP_ETHER:
        if caplen < 2:
            return short_of(2, caplen, c.wire_end, OUT_BAD_LINK_HEADER)
        return ether_chain(pkt, caplen, 0, 0x8864, False, c, l3, version)
    if linktype != LINKTYPE_PPP and linktype != LINKTYPE_PPP_HDLC:
        return OUT_UNSUPPORTED_LINKTYPE
    if caplen < 2:
        return short_of(2, caplen, c.wire_end, OUT_BAD_LINK_HEADER)
    if pkt[0] == 0xFF and pkt[1] == 0x03:
        pos = 2
        if caplen < 4:
            return short_of(4, caplen, c.wire_end, OUT_BAD_LINK_HEADER)
    c.encap |= ENC_PPP
    ethertype = ppp_ethertype(ld_be16(pkt + pos))
    if ethertype == 0:
        return OUT_NOT_IP
    return ether_chain(pkt, caplen, pos + 2, ethertype, False, c, l3, version)
