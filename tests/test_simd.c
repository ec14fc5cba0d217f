/* The SIMD helpers of core/util/simd.h that are not covered through a
 * kernel's reference twin: the AVX2 partial loads and stores (full vectors
 * plain, partial ones in 4-, 2- and 1-lane pieces: AMD microcodes masked
 * stores) must touch exactly the first n lanes. A store past n would go
 * unseen by the kernels' tests when it lands in a row written later. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "../core/util/simd.h"

TestSuite(simd);

Test(simd, avx2_partial_loads_and_stores_touch_exactly_n_lanes) {
#if defined(__AVX2__) && !defined(__AVX512F__)
    const __m256 v = _mm256_setr_ps(10, 11, 12, 13, 14, 15, 16, 17);
    const __m256i vi = _mm256_setr_epi32(20, 21, 22, 23, 24, 25, 26, 27);
    for (int n = -1; n <= 9; n++) {
        float f[24];
        uint32_t u[24];
        for (int i = 0; i < 24; i++) f[i] = -1.f, u[i] = 0xdeadbeef;
        ip_store8(f + 8, n, v);
        ip_store8i(u + 8, n, vi);
        int k = n < 0 ? 0 : n > 8 ? 8 : n; /* lanes written */
        for (int i = 0; i < 24; i++) {
            int in = i >= 8 && i < 8 + k;
            cr_assert(f[i] == (in ? 10.f + (float)(i - 8) : -1.f), "ip_store8 n=%d: f[%d] = %g", n, i, f[i]);
            cr_assert(u[i] == (in ? 20u + (uint32_t)(i - 8) : 0xdeadbeefu), "ip_store8i n=%d: u[%d] = %u", n, i, u[i]);
        }
        /* loads: the first n lanes, zeros beyond */
        float src[16], out[8];
        uint32_t srci[16], outi[8];
        for (int i = 0; i < 16; i++) src[i] = 1.f + (float)i, srci[i] = 100u + (uint32_t)i;
        _mm256_storeu_ps(out, ip_load8(src, n));
        _mm256_storeu_si256((__m256i *)outi, ip_load8i(srci, n));
        for (int i = 0; i < 8; i++) {
            cr_assert(out[i] == (i < k ? src[i] : 0.f), "ip_load8 n=%d: lane %d = %g", n, i, out[i]);
            cr_assert(outi[i] == (i < k ? srci[i] : 0u), "ip_load8i n=%d: lane %d = %u", n, i, outi[i]);
        }
    }
#else
    cr_skip_test("the AVX2 helpers are compiled only where AVX2 is the widest vector (here: %s)",
#if defined(__AVX512F__)
                 "AVX-512"
#else
                 "no AVX2"
#endif
    );
#endif
}
