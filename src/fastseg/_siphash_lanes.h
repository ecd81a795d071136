/* SipHash-2-4 over FS_SIP_LANES independent messages at once.
 *
 * Every lane has its own key and its own message; all lanes of one call have
 * the same number of 64-bit message words.  Words are laid out word-major,
 * m[w * FS_SIP_LANES + lane], so that one vector load picks up word w of four
 * lanes.  last[lane] is the final block exactly as SipHash defines it: the
 * trailing len % 8 message bytes (little-endian) with (len & 0xff) << 56.
 *
 * Two implementations with the same results: a scalar one (any CPU) and an
 * AVX2 one that runs the eight lanes as two interleaved groups of four, so
 * the two dependency chains keep the vector ports busy.  The AVX2 code is
 * compiled with a function-level target attribute and chosen at run time,
 * so the extension stays loadable on CPUs without AVX2 (no -march flags).
 */
#ifndef FASTSEG_SIPHASH_LANES_H
#define FASTSEG_SIPHASH_LANES_H
#include <stdint.h>
#include <stddef.h>
#include "_siphash.h"

#define FS_SIP_LANES 8

#define FS_SIP_C0 0x736f6d6570736575ULL
#define FS_SIP_C1 0x646f72616e646f6dULL
#define FS_SIP_C2 0x6c7967656e657261ULL
#define FS_SIP_C3 0x7465646279746573ULL

typedef void (*fs_sip_lanes_fn)(const uint64_t *k0, const uint64_t *k1,
                                const uint64_t *m, size_t nw,
                                const uint64_t *last, uint64_t *out);

static void fs_sip_lanes_scalar(const uint64_t *k0, const uint64_t *k1,
                                const uint64_t *m, size_t nw,
                                const uint64_t *last, uint64_t *out) {
    for (int lane = 0; lane < FS_SIP_LANES; lane++) {
        uint64_t v0 = FS_SIP_C0 ^ k0[lane], v1 = FS_SIP_C1 ^ k1[lane];
        uint64_t v2 = FS_SIP_C2 ^ k0[lane], v3 = FS_SIP_C3 ^ k1[lane];
        for (size_t w = 0; w < nw; w++) {
            uint64_t word = m[w * FS_SIP_LANES + lane];
            v3 ^= word;
            FS_SIPROUND(v0, v1, v2, v3);
            FS_SIPROUND(v0, v1, v2, v3);
            v0 ^= word;
        }
        v3 ^= last[lane];
        FS_SIPROUND(v0, v1, v2, v3);
        FS_SIPROUND(v0, v1, v2, v3);
        v0 ^= last[lane];
        v2 ^= 0xff;
        FS_SIPROUND(v0, v1, v2, v3);
        FS_SIPROUND(v0, v1, v2, v3);
        FS_SIPROUND(v0, v1, v2, v3);
        FS_SIPROUND(v0, v1, v2, v3);
        out[lane] = v0 ^ v1 ^ v2 ^ v3;
    }
}

#if (defined(__GNUC__) || defined(__clang__)) && (defined(__x86_64__) || defined(__i386__))
#define FS_HAVE_AVX2_PATH 1
#include <immintrin.h>

#define FS_AVX2 __attribute__((target("avx2")))

/* Rotations: 32 is a dword swap and 16 a byte shuffle (one instruction each);
 * 13, 17 and 21 need shift/shift/or. */
#define FS_V_ROTL(x, b) _mm256_or_si256(_mm256_slli_epi64((x), (b)), \
                                        _mm256_srli_epi64((x), 64 - (b)))
#define FS_V_ROTL32(x) _mm256_shuffle_epi32((x), _MM_SHUFFLE(2, 3, 0, 1))
#define FS_V_ROTL16(x, mask16) _mm256_shuffle_epi8((x), (mask16))

#define FS_V_ROUND(v0, v1, v2, v3, mask16) do {                          \
    v0 = _mm256_add_epi64(v0, v1); v1 = FS_V_ROTL(v1, 13);              \
    v1 = _mm256_xor_si256(v1, v0); v0 = FS_V_ROTL32(v0);                \
    v2 = _mm256_add_epi64(v2, v3); v3 = FS_V_ROTL16(v3, mask16);        \
    v3 = _mm256_xor_si256(v3, v2);                                      \
    v0 = _mm256_add_epi64(v0, v3); v3 = FS_V_ROTL(v3, 21);              \
    v3 = _mm256_xor_si256(v3, v0);                                      \
    v2 = _mm256_add_epi64(v2, v1); v1 = FS_V_ROTL(v1, 17);              \
    v1 = _mm256_xor_si256(v1, v2); v2 = FS_V_ROTL32(v2);                \
} while (0)

/* One message block into both groups of four lanes (a, b). */
#define FS_V_BLOCK(wa, wb) do {                                          \
    a3 = _mm256_xor_si256(a3, wa); b3 = _mm256_xor_si256(b3, wb);       \
    FS_V_ROUND(a0, a1, a2, a3, rot16); FS_V_ROUND(b0, b1, b2, b3, rot16); \
    FS_V_ROUND(a0, a1, a2, a3, rot16); FS_V_ROUND(b0, b1, b2, b3, rot16); \
    a0 = _mm256_xor_si256(a0, wa); b0 = _mm256_xor_si256(b0, wb);       \
} while (0)

FS_AVX2 static inline __attribute__((always_inline)) void
fs_sip_lanes_avx2_body(const uint64_t *k0, const uint64_t *k1,
                       const uint64_t *m, size_t nw,
                       const uint64_t *last, uint64_t *out) {
    /* Byte i of each rotated qword comes from byte (i - 2) mod 8. */
    const __m256i rot16 = _mm256_setr_epi8(
        6, 7, 0, 1, 2, 3, 4, 5, 14, 15, 8, 9, 10, 11, 12, 13,
        6, 7, 0, 1, 2, 3, 4, 5, 14, 15, 8, 9, 10, 11, 12, 13);
    const __m256i ka0 = _mm256_loadu_si256((const __m256i *)k0);
    const __m256i kb0 = _mm256_loadu_si256((const __m256i *)(k0 + 4));
    const __m256i ka1 = _mm256_loadu_si256((const __m256i *)k1);
    const __m256i kb1 = _mm256_loadu_si256((const __m256i *)(k1 + 4));
    __m256i a0 = _mm256_xor_si256(_mm256_set1_epi64x((long long)FS_SIP_C0), ka0);
    __m256i a1 = _mm256_xor_si256(_mm256_set1_epi64x((long long)FS_SIP_C1), ka1);
    __m256i a2 = _mm256_xor_si256(_mm256_set1_epi64x((long long)FS_SIP_C2), ka0);
    __m256i a3 = _mm256_xor_si256(_mm256_set1_epi64x((long long)FS_SIP_C3), ka1);
    __m256i b0 = _mm256_xor_si256(_mm256_set1_epi64x((long long)FS_SIP_C0), kb0);
    __m256i b1 = _mm256_xor_si256(_mm256_set1_epi64x((long long)FS_SIP_C1), kb1);
    __m256i b2 = _mm256_xor_si256(_mm256_set1_epi64x((long long)FS_SIP_C2), kb0);
    __m256i b3 = _mm256_xor_si256(_mm256_set1_epi64x((long long)FS_SIP_C3), kb1);
    __m256i wa, wb;
    for (size_t w = 0; w < nw; w++) {
        wa = _mm256_loadu_si256((const __m256i *)(m + w * FS_SIP_LANES));
        wb = _mm256_loadu_si256((const __m256i *)(m + w * FS_SIP_LANES + 4));
        FS_V_BLOCK(wa, wb);
    }
    wa = _mm256_loadu_si256((const __m256i *)last);
    wb = _mm256_loadu_si256((const __m256i *)(last + 4));
    FS_V_BLOCK(wa, wb);
    const __m256i ff = _mm256_set1_epi64x(0xff);
    a2 = _mm256_xor_si256(a2, ff);
    b2 = _mm256_xor_si256(b2, ff);
    for (int r = 0; r < 4; r++) {
        FS_V_ROUND(a0, a1, a2, a3, rot16);
        FS_V_ROUND(b0, b1, b2, b3, rot16);
    }
    a0 = _mm256_xor_si256(_mm256_xor_si256(a0, a1), _mm256_xor_si256(a2, a3));
    b0 = _mm256_xor_si256(_mm256_xor_si256(b0, b1), _mm256_xor_si256(b2, b3));
    _mm256_storeu_si256((__m256i *)out, a0);
    _mm256_storeu_si256((__m256i *)(out + 4), b0);
}

FS_AVX2 static void fs_sip_lanes_avx2(const uint64_t *k0, const uint64_t *k1,
                                      const uint64_t *m, size_t nw,
                                      const uint64_t *last, uint64_t *out) {
    fs_sip_lanes_avx2_body(k0, k1, m, nw, last, out);
}

/* The cookie messages: 16 bytes (IPv4) and 40 bytes (IPv6).  A constant
 * word count lets the compiler unroll the message loop. */
FS_AVX2 static void fs_sip_lanes_avx2_w2(const uint64_t *k0, const uint64_t *k1,
                                         const uint64_t *m, size_t nw,
                                         const uint64_t *last, uint64_t *out) {
    (void)nw;
    fs_sip_lanes_avx2_body(k0, k1, m, 2, last, out);
}

FS_AVX2 static void fs_sip_lanes_avx2_w5(const uint64_t *k0, const uint64_t *k1,
                                         const uint64_t *m, size_t nw,
                                         const uint64_t *last, uint64_t *out) {
    (void)nw;
    fs_sip_lanes_avx2_body(k0, k1, m, 5, last, out);
}

static int fs_cpu_has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") ? 1 : 0;
}
#else
#define FS_HAVE_AVX2_PATH 0
static int fs_cpu_has_avx2(void) { return 0; }
#endif

/* The fastest implementation this CPU runs for messages of nw words
 * (0 = any), or the scalar one when allow_simd is 0 (benchmarks and
 * cross-checks). */
static fs_sip_lanes_fn fs_sip_lanes_select(int allow_simd, int nw) {
#if FS_HAVE_AVX2_PATH
    if (allow_simd && fs_cpu_has_avx2()) {
        if (nw == 2)
            return fs_sip_lanes_avx2_w2;
        if (nw == 5)
            return fs_sip_lanes_avx2_w5;
        return fs_sip_lanes_avx2;
    }
#endif
    (void)allow_simd;
    (void)nw;
    return fs_sip_lanes_scalar;
}
#endif
