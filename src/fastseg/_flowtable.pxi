# The flow table: connection records (array of structs, see _track.pxd),
# the loss states beside them, and an open-addressing index from flow key to
# record slot (linear probing, backward-shift deletion, keyed hash).
# Included by _track.pyx: one module, so the calls inline.

# Growing the record array: on Linux an anonymous mapping grown with
# mremap (pages move, bytes are not copied) and backed by transparent huge
# pages where allowed (one fault per 2 MiB instead of per 4 KiB);
# elsewhere realloc.
cdef extern from *:
    """
    #include <stdlib.h>
    #if defined(__linux__)
    #ifndef _GNU_SOURCE
    #define _GNU_SOURCE
    #endif
    #include <sys/mman.h>
    static void *fs_grow(void *old, size_t old_size, size_t new_size) {
        void *p;
        if (old == NULL) {
            p = mmap(NULL, new_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        } else {
            p = mremap(old, old_size, new_size, MREMAP_MAYMOVE);
        }
        if (p == MAP_FAILED)
            return NULL;
    #ifdef MADV_HUGEPAGE
        madvise(p, new_size, MADV_HUGEPAGE);
    #endif
        return p;
    }
    static void fs_release(void *p, size_t size) {
        if (p != NULL)
            munmap(p, size);
    }
    #else
    static void *fs_grow(void *old, size_t old_size, size_t new_size) {
        (void)old_size;
        return realloc(old, new_size);
    }
    static void fs_release(void *p, size_t size) {
        (void)size;
        free(p);
    }
    #endif
    """
    void* fs_grow(void* old, size_t old_size, size_t new_size) noexcept nogil
    void fs_release(void* p, size_t size) noexcept nogil

# Buckets of a new table: 2**FT_INITIAL_BITS.
cdef enum:
    FT_INITIAL_BITS = 10


cdef int ft_init(FlowTable* ft, uint64_t k0, uint64_t k1, bint with_loss) noexcept nogil:
    memset(ft, 0, sizeof(FlowTable))
    ft.with_loss = with_loss
    ft.k0 = k0
    ft.k1 = k1 | 1
    ft.bits = FT_INITIAL_BITS
    ft.mask = (1 << ft.bits) - 1
    ft.index = <int32_t*>malloc(sizeof(int32_t) * (ft.mask + 1))
    if ft.index == NULL:
        return ST_NOMEM
    memset(ft.index, 0xff, sizeof(int32_t) * (ft.mask + 1))
    return ST_OK


cdef void ft_release(FlowTable* ft) noexcept nogil:
    cdef Py_ssize_t i
    if ft.lstates != NULL:
        for i in range(ft.nrec):
            if ft.recs[i].live != 0:
                loss_free(&ft.lstates[i])
    fs_release(ft.lstates, ft.lcap * sizeof(LossState))
    fs_release(ft.recs, ft.cap * sizeof(Conn))
    free(ft.free_slots)
    free(ft.done)
    free(ft.index)
    ft.lstates = NULL
    ft.recs = NULL
    ft.free_slots = NULL
    ft.done = NULL
    ft.index = NULL


cdef inline size_t ft_memory_bytes(const FlowTable* ft) noexcept nogil:
    return (ft.cap * sizeof(Conn) + (ft.mask + 1) * sizeof(int32_t)
            + (ft.free_cap + ft.done_cap) * sizeof(int32_t)
            + ft.lcap * sizeof(LossState))


cdef inline uint64_t ft_bucket(const FlowTable* ft, uint64_t fk) noexcept nogil:
    # Keyed multiply-shift over the (public) flow key: without the
    # per-process secret a capture cannot aim its tuples at one bucket.
    return ((fk ^ ft.k0) * ft.k1) >> (64 - ft.bits)


cdef inline uint64_t ft_empty_pos(const FlowTable* ft, uint64_t fk) noexcept nogil:
    # Where a new entry for ``fk`` goes: the first empty bucket from its home.
    cdef uint64_t pos = ft_bucket(ft, fk)
    while ft.index[pos] >= 0:
        pos = (pos + 1) & ft.mask
    return pos


cdef int ft_grow_index(FlowTable* ft) noexcept nogil:
    # Rebuilt by walking the records in memory order (sequential reads)
    # rather than the old index (a random read per entry).
    cdef int32_t* old = ft.index
    cdef uint64_t pos
    cdef Py_ssize_t i
    ft.bits += 1
    ft.mask = (1 << ft.bits) - 1
    ft.index = <int32_t*>malloc(sizeof(int32_t) * (ft.mask + 1))
    if ft.index == NULL:
        ft.index = old
        ft.bits -= 1
        ft.mask = (1 << ft.bits) - 1
        return ST_NOMEM
    memset(ft.index, 0xff, sizeof(int32_t) * (ft.mask + 1))
    for i in range(ft.nrec):
        if ft.recs[i].live == 1:
            pos = ft_empty_pos(ft, ft.recs[i].flow_key)
            ft.index[pos] = <int32_t>i
    free(old)
    return ST_OK


cdef inline int32_t ft_lookup(const FlowTable* ft, uint64_t fk, const uint8_t* src, uint16_t sport,
                              const uint8_t* dst, uint16_t dport, int* side,
                              uint64_t* where) noexcept nogil:
    # The live record of this 4-tuple (``side``: 0 when src is its
    # originator) and its bucket, or -1 and the empty bucket where it goes.
    cdef uint64_t pos = ft_bucket(ft, fk)
    cdef int32_t slot
    cdef const Conn* c
    while True:
        slot = ft.index[pos]
        if slot < 0:
            where[0] = pos
            return -1
        c = &ft.recs[slot]
        if c.flow_key == fk:
            if (c.port[0] == sport and c.port[1] == dport and memcmp(c.addr[0], src, 16) == 0
                    and memcmp(c.addr[1], dst, 16) == 0):
                side[0] = 0
                where[0] = pos
                return slot
            if (c.port[1] == sport and c.port[0] == dport and memcmp(c.addr[1], src, 16) == 0
                    and memcmp(c.addr[0], dst, 16) == 0):
                side[0] = 1
                where[0] = pos
                return slot
        pos = (pos + 1) & ft.mask


cdef void ft_delete(FlowTable* ft, uint64_t pos) noexcept nogil:
    # Backward-shift deletion keeps linear probing free of tombstones.
    cdef uint64_t hole = pos, nxt = pos, home
    cdef int32_t slot
    ft.index[hole] = -1
    while True:
        nxt = (nxt + 1) & ft.mask
        slot = ft.index[nxt]
        if slot < 0:
            break
        home = ft_bucket(ft, ft.recs[slot].flow_key)
        # Move the entry into the hole when its home is not in (hole, nxt].
        if ((nxt - home) & ft.mask) >= ((nxt - hole) & ft.mask):
            ft.index[hole] = slot
            ft.index[nxt] = -1
            hole = nxt
    ft.used -= 1


cdef uint64_t ft_find_pos(const FlowTable* ft, int32_t slot) noexcept nogil:
    cdef uint64_t pos = ft_bucket(ft, ft.recs[slot].flow_key)
    while ft.index[pos] != slot:
        pos = (pos + 1) & ft.mask
    return pos


cdef int push_slot(int32_t** arr, Py_ssize_t* n, Py_ssize_t* cap, int32_t v) noexcept nogil:
    cdef Py_ssize_t newcap
    cdef int32_t* p
    if n[0] == cap[0]:
        newcap = cap[0] * 2 if cap[0] else 1024
        p = <int32_t*>realloc(arr[0], newcap * sizeof(int32_t))
        if p == NULL:
            return ST_NOMEM
        arr[0] = p
        cap[0] = newcap
    arr[0][n[0]] = v
    n[0] += 1
    return ST_OK


cdef int ft_finish(FlowTable* ft, int32_t slot, uint64_t pos) noexcept nogil:
    # The record leaves the index and waits in the done list to be emitted.
    ft_delete(ft, pos)
    ft.recs[slot].live = 2
    ft.live -= 1
    return push_slot(&ft.done, &ft.ndone, &ft.done_cap, slot)


cdef int ft_finish_all(FlowTable* ft) noexcept nogil:
    cdef Py_ssize_t i
    cdef int status = ST_OK
    for i in range(ft.nrec):
        if ft.recs[i].live == 1:
            ft.recs[i].live = 2
            status = push_slot(&ft.done, &ft.ndone, &ft.done_cap, <int32_t>i)
            if status != ST_OK:
                return status
    # Everything left the index at once: clear it instead of deleting entry
    # by entry.
    memset(ft.index, 0xff, sizeof(int32_t) * (ft.mask + 1))
    ft.used = 0
    ft.live = 0
    return ST_OK


cdef inline int ft_free_slot(FlowTable* ft, int32_t slot) noexcept nogil:
    # An emitted record's slot, for a later connection.
    ft.recs[slot].live = 0
    return push_slot(&ft.free_slots, &ft.nfree, &ft.free_cap, slot)


cdef int32_t ft_new_slot(FlowTable* ft) noexcept nogil:
    cdef Py_ssize_t newcap
    cdef Conn* p
    cdef LossState* lp
    if ft.nfree > 0:
        ft.nfree -= 1
        return ft.free_slots[ft.nfree]
    if ft.nrec == ft.cap:
        newcap = ft.cap * 2 if ft.cap else 1024
        if newcap > 0x7fffffff:
            return -1
        if ft.with_loss and ft.lcap < newcap:
            lp = <LossState*>fs_grow(ft.lstates, ft.lcap * sizeof(LossState),
                                     newcap * sizeof(LossState))
            if lp == NULL:
                return -1
            ft.lstates = lp
            ft.lcap = newcap
        p = <Conn*>fs_grow(ft.recs, ft.cap * sizeof(Conn), newcap * sizeof(Conn))
        if p == NULL:
            return -1
        ft.recs = p
        ft.cap = newcap
    if ft.with_loss:
        loss_init(&ft.lstates[ft.nrec])
    ft.nrec += 1
    return <int32_t>(ft.nrec - 1)


cdef int32_t ft_insert(FlowTable* ft, uint64_t fk, uint64_t pos) noexcept nogil:
    # A zeroed live record for a new connection, entered at bucket ``pos``
    # (from ft_lookup; found again if the index grows); -1 without memory.
    cdef int32_t slot
    cdef Conn* c
    if ft.used * 2 >= <Py_ssize_t>(ft.mask + 1):
        if ft_grow_index(ft) != ST_OK:
            return -1
        pos = ft_empty_pos(ft, fk)
    slot = ft_new_slot(ft)
    if slot < 0:
        return -1
    c = &ft.recs[slot]
    memset(c, 0, sizeof(Conn))
    c.id = ft.next_id
    ft.next_id += 1
    c.flow_key = fk
    c.live = 1
    ft.index[pos] = slot
    ft.used += 1
    ft.live += 1
    return slot
