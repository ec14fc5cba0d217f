/* Internal: AVX-512 helpers shared by the elementwise and normalisation
 * kernels (compiled only when the target has AVX-512F; every caller keeps a
 * portable path). */
#ifndef IP_SIMD_H
#define IP_SIMD_H

#if defined(__AVX512F__)
#include <immintrin.h>
#include <stdint.h>

/* Mask of the first n (0..16) lanes. */
static inline __mmask16 ip_lanes(int n) {
    return n >= 16 ? (__mmask16)0xFFFF : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1);
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
    __mmask16 c = _mm512_cmp_ps_mask(v1, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v1, v1, _CMP_UNORD_Q);
    m = _mm512_mask_blend_ps(c, m, v1);
    kk = _mm512_mask_blend_epi32(c, kk, _mm512_add_epi32(k0, _mm512_set1_epi32(1)));
    c = _mm512_cmp_ps_mask(v2, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v2, v2, _CMP_UNORD_Q);
    m = _mm512_mask_blend_ps(c, m, v2);
    kk = _mm512_mask_blend_epi32(c, kk, _mm512_add_epi32(k0, _mm512_set1_epi32((int)w)));
    c = _mm512_cmp_ps_mask(v3, m, _CMP_GT_OQ) | _mm512_cmp_ps_mask(v3, v3, _CMP_UNORD_Q);
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
#endif

#endif
