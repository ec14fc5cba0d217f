/* Internal: AVX-512 and AVX2 helpers shared by the elementwise and
 * normalisation kernels (each set compiled only when the target has it: the
 * AVX-512 set with AVX-512F, the AVX2 set with AVX2 but no AVX-512F; every
 * caller keeps a portable path). The two sets compute the same values with
 * 16 and 8 lanes. */
#ifndef IP_SIMD_H
#define IP_SIMD_H

#if defined(__AVX512F__)
#include <immintrin.h>
#include <stdint.h>

/* Mask of the first n (0..16) lanes. */
static inline __mmask16 ip_lanes(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
}

/* The max-pool's rule for the next window value v against the running max m
 * (lanes where v replaces m): v > m or v is NaN. */
static inline __mmask16 ip_pool_takes(__m512 v, __m512 m) {
    return _mm512_cmp_ps_mask(v, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
}

/* 2x2 max-pool of one 32-column chunk of a row pair: a0|a1 = columns 0..31 of
 * the upper row, b0|b1 of the lower row. Lane j pools columns 2j, 2j+1 of
 * both rows with PyTorch's CPU rule (scan the window in row-major order, take
 * v when v > max or v is NaN). *k = index of the max: base + 2j, + 1, + w, + w + 1. */
static inline __m512 ip_pool_vec(__m512 a0, __m512 a1, __m512 b0, __m512 b1, uint32_t base, uint32_t w,
                                 __m512i *k) {
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    __m512 v0 = _mm512_permutex2var_ps(a0, even, a1), v1 = _mm512_permutex2var_ps(a0, odd, a1);
    __m512 v2 = _mm512_permutex2var_ps(b0, even, b1), v3 = _mm512_permutex2var_ps(b0, odd, b1);
    __m512i k0 = _mm512_add_epi32(_mm512_set1_epi32((int)base), even);
    __m512 m = v0;
    __m512i kk = k0;
    __mmask16 c = ip_pool_takes(v1, m);
    m = _mm512_mask_blend_ps(c, m, v1);
    kk = _mm512_mask_blend_epi32(c, kk, _mm512_add_epi32(k0, _mm512_set1_epi32(1)));
    c = ip_pool_takes(v2, m);
    m = _mm512_mask_blend_ps(c, m, v2);
    kk = _mm512_mask_blend_epi32(c, kk, _mm512_add_epi32(k0, _mm512_set1_epi32((int)w)));
    c = ip_pool_takes(v3, m);
    m = _mm512_mask_blend_ps(c, m, v3);
    kk = _mm512_mask_blend_epi32(c, kk, _mm512_add_epi32(k0, _mm512_set1_epi32((int)w + 1)));
    *k = kk;
    return m;
}

/* ip_pool_vec on rows r0, r1 loaded from memory: nout (1..16) outputs from 2*nout columns. */
static inline __m512 ip_pool_chunk16(const float *r0, const float *r1, int nout, uint32_t base, uint32_t w,
                                     __m512i *k) {
    __mmask16 lo = ip_lanes(2 * nout), hi = ip_lanes(2 * nout - 16);
    __m512 a0 = _mm512_maskz_loadu_ps(lo, r0), a1 = _mm512_maskz_loadu_ps(hi, r0 + 16);
    __m512 b0 = _mm512_maskz_loadu_ps(lo, r1), b1 = _mm512_maskz_loadu_ps(hi, r1 + 16);
    return ip_pool_vec(a0, a1, b0, b1, base, w, k);
}

/* Interleaves lanes: lo = e0 o0 e1 o1 ... e7 o7, hi = e8 o8 ... e15 o15 (the inverse of the pool's split). */
static inline void ip_interleave(__m512 e, __m512 o, __m512 *lo, __m512 *hi) {
    const __m512i il = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
    const __m512i ih = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
    *lo = _mm512_permutex2var_ps(e, il, o);
    *hi = _mm512_permutex2var_ps(e, ih, o);
}
#elif defined(__AVX2__)
#include <immintrin.h>
#include <stdint.h>

/* Lane mask (all ones in the first n of 8 lanes) for maskload / maskstore. */
static inline __m256i ip_lanes8(int n) {
    const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n < 0 ? 0 : n), idx);
}

/* The first n lanes from p (the rest 0) and to p. No masked stores: AMD
 * microcodes them (several times a plain store's cost; in an evaluation the
 * pooled tails' partial rows made them a quarter of tail_fwd_range), so a
 * partial vector is stored as its 4-, 2- and 1-lane pieces, the lanes beyond
 * n untouched. Masked loads are cheap and stay. */
static inline __m256 ip_load8(const float *p, int n) {
    return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, ip_lanes8(n));
}
static inline void ip_store8(float *p, int n, __m256 v) {
    if (n >= 8) {
        _mm256_storeu_ps(p, v);
        return;
    }
    __m128 q = _mm256_castps256_ps128(v);
    if (n >= 4) _mm_storeu_ps(p, q), q = _mm256_extractf128_ps(v, 1), p += 4, n -= 4;
    if (n >= 2) _mm_storel_pi((__m64 *)p, q), q = _mm_movehl_ps(q, q), p += 2, n -= 2;
    if (n >= 1) _mm_store_ss(p, q);
}
static inline __m256i ip_load8i(const uint32_t *p, int n) {
    return n >= 8 ? _mm256_loadu_si256((const __m256i *)p) : _mm256_maskload_epi32((const int *)p, ip_lanes8(n));
}
static inline void ip_store8i(uint32_t *p, int n, __m256i v) {
    if (n >= 8) {
        _mm256_storeu_si256((__m256i *)p, v);
        return;
    }
    __m128i q = _mm256_castsi256_si128(v);
    if (n >= 4) _mm_storeu_si128((__m128i *)p, q), q = _mm256_extracti128_si256(v, 1), p += 4, n -= 4;
    if (n >= 2) _mm_storel_epi64((__m128i *)p, q), q = _mm_srli_si128(q, 8), p += 2, n -= 2;
    if (n >= 1) _mm_storeu_si32(p, q);
}

/* ip_pool_takes with 8 lanes: all ones where v replaces m (v > m or v is NaN). */
static inline __m256 ip_pool_takes8(__m256 v, __m256 m) {
    return _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
}

/* ip_pool_vec with 8 lanes: a0|a1 = columns 0..15 of the upper row, b0|b1 of
 * the lower row; lane j pools columns 2j, 2j+1 of both rows with the same
 * rule (take v when v > max or v is NaN, in row-major order). */
static inline __m256 ip_pool_vec8(__m256 a0, __m256 a1, __m256 b0, __m256 b1, uint32_t base, uint32_t w,
                                  __m256i *k) {
    /* shuffle_ps picks within 128-bit halves; permute4x64 puts the halves in order */
#define IP_EVEN8(x, y) \
    _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(x, y, 0x88)), 0xD8))
#define IP_ODD8(x, y) \
    _mm256_castpd_ps(_mm256_permute4x64_pd(_mm256_castps_pd(_mm256_shuffle_ps(x, y, 0xDD)), 0xD8))
    __m256 v0 = IP_EVEN8(a0, a1), v1 = IP_ODD8(a0, a1), v2 = IP_EVEN8(b0, b1), v3 = IP_ODD8(b0, b1);
#undef IP_EVEN8
#undef IP_ODD8
    const __m256i k0 = _mm256_add_epi32(_mm256_set1_epi32((int)base), _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14));
    __m256 m = v0;
    __m256i kk = k0;
    __m256 c = ip_pool_takes8(v1, m);
    m = _mm256_blendv_ps(m, v1, c);
    kk = _mm256_blendv_epi8(kk, _mm256_add_epi32(k0, _mm256_set1_epi32(1)), _mm256_castps_si256(c));
    c = ip_pool_takes8(v2, m);
    m = _mm256_blendv_ps(m, v2, c);
    kk = _mm256_blendv_epi8(kk, _mm256_add_epi32(k0, _mm256_set1_epi32((int)w)), _mm256_castps_si256(c));
    c = ip_pool_takes8(v3, m);
    m = _mm256_blendv_ps(m, v3, c);
    kk = _mm256_blendv_epi8(kk, _mm256_add_epi32(k0, _mm256_set1_epi32((int)w + 1)), _mm256_castps_si256(c));
    *k = kk;
    return m;
}

/* ip_pool_vec8 on rows r0, r1 loaded from memory: nout (1..8) outputs from 2*nout columns. */
static inline __m256 ip_pool_chunk8(const float *r0, const float *r1, int nout, uint32_t base, uint32_t w,
                                    __m256i *k) {
    __m256 a0 = ip_load8(r0, 2 * nout), a1 = ip_load8(r0 + 8, 2 * nout - 8);
    __m256 b0 = ip_load8(r1, 2 * nout), b1 = ip_load8(r1 + 8, 2 * nout - 8);
    return ip_pool_vec8(a0, a1, b0, b1, base, w, k);
}

/* Interleaves lanes: lo = e0 o0 e1 o1 e2 o2 e3 o3, hi = e4 o4 ... e7 o7 (the inverse of the pool's split). */
static inline void ip_interleave8(__m256 e, __m256 o, __m256 *lo, __m256 *hi) {
    __m256 l = _mm256_unpacklo_ps(e, o), h = _mm256_unpackhi_ps(e, o); /* e0 o0 e1 o1 | e4 o4 e5 o5 and e2.. | e6.. */
    *lo = _mm256_permute2f128_ps(l, h, 0x20);
    *hi = _mm256_permute2f128_ps(l, h, 0x31);
}
#endif

#endif
