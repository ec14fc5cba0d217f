/* Philox4x32-10 known answers and the generator's basic properties. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util/rng.h"

static void kat(const uint32_t ctr[4], const uint32_t key[2], const uint32_t want[4]) {
    uint32_t out[4];
    ip_philox4x32_10(ctr, key, out);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(out[i], want[i], "word %d: got 0x%08x, want 0x%08x", i, out[i], want[i]);
}

Test(rng, philox_kat_zero) {
    const uint32_t ctr[4] = {0, 0, 0, 0}, key[2] = {0, 0};
    const uint32_t want[4] = {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8};
    kat(ctr, key, want);
}

Test(rng, philox_kat_ones) {
    const uint32_t ctr[4] = {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, key[2] = {0xffffffff, 0xffffffff};
    const uint32_t want[4] = {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd};
    kat(ctr, key, want);
}

Test(rng, philox_kat_pi) {
    const uint32_t ctr[4] = {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, key[2] = {0xa4093822, 0x299f31d0};
    const uint32_t want[4] = {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1};
    kat(ctr, key, want);
}

Test(rng, same_seed_and_stream_same_sequence) {
    ip_rng a, b;
    ip_rng_init(&a, 42, ip_stream("init", 3));
    ip_rng_init(&b, 42, ip_stream("init", 3));
    for (int i = 0; i < 1000; i++) cr_assert_eq(ip_rng_u32(&a), ip_rng_u32(&b), "draw %d", i);
    for (int i = 0; i < 100; i++) cr_assert_eq(ip_rng_normal(&a), ip_rng_normal(&b), "normal %d", i);
}

Test(rng, different_streams_and_seeds_differ) {
    cr_assert_neq(ip_stream("init", 0), ip_stream("init", 1));
    cr_assert_neq(ip_stream("init", 0), ip_stream("shuffle", 0));
    cr_assert_eq(ip_stream("init", 7), ip_stream("init", 7));
    ip_rng a, b, c;
    ip_rng_init(&a, 42, ip_stream("init", 0));
    ip_rng_init(&b, 42, ip_stream("init", 1));
    ip_rng_init(&c, 43, ip_stream("init", 0));
    int same_ab = 0, same_ac = 0;
    for (int i = 0; i < 256; i++) {
        uint32_t x = ip_rng_u32(&a), y = ip_rng_u32(&b), z = ip_rng_u32(&c);
        same_ab += x == y;
        same_ac += x == z;
    }
    cr_assert_lt(same_ab, 2);
    cr_assert_lt(same_ac, 2);
}

Test(rng, counter_crosses_blocks) {
    /* the n-th number equals word n%4 of block n/4 of the raw function */
    ip_rng r;
    uint64_t seed = 0x0123456789abcdefull, stream = 0xfedcba9876543210ull;
    ip_rng_init(&r, seed, stream);
    uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
    for (uint32_t blk = 0; blk < 5; blk++) {
        uint32_t ctr[4] = {blk, 0, (uint32_t)stream, (uint32_t)(stream >> 32)}, out[4];
        ip_philox4x32_10(ctr, key, out);
        for (int i = 0; i < 4; i++) cr_assert_eq(ip_rng_u32(&r), out[i], "block %u word %d", blk, i);
    }
}

Test(rng, uniform_in_unit_interval) {
    ip_rng r;
    ip_rng_init(&r, 1, ip_stream("uniform", 0));
    double s = 0;
    const int n = 100000;
    float mn = 1, mx = 0;
    for (int i = 0; i < n; i++) {
        float u = ip_rng_uniform(&r);
        cr_assert(u >= 0.f && u < 1.f, "uniform %g out of [0,1)", u);
        mn = fminf(mn, u);
        mx = fmaxf(mx, u);
        s += u;
    }
    cr_assert(fabs(s / n - 0.5) < 0.01, "mean %g", s / n);
    cr_assert_lt(mn, 0.001f);
    cr_assert_gt(mx, 0.999f);
    for (int i = 0; i < 10000; i++) {
        float v = ip_rng_range(&r, -3.f, 5.f);
        cr_assert(v >= -3.f && v < 5.f, "range %g", v);
    }
}

Test(rng, normal_moments) {
    ip_rng r;
    ip_rng_init(&r, 7, ip_stream("normal", 0));
    const int n = 100000;
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++) {
        double z = ip_rng_normal(&r);
        cr_assert(isfinite(z));
        s += z;
        ss += z * z;
    }
    double mean = s / n, var = ss / n - mean * mean;
    cr_assert(fabs(mean) < 0.02, "mean %g", mean);
    cr_assert(fabs(var - 1.0) < 0.03, "variance %g", var);
}

Test(rng, below_in_range_and_covers) {
    ip_rng r;
    ip_rng_init(&r, 3, ip_stream("below", 0));
    const uint32_t ns[] = {1, 2, 3, 7, 10, 1000, 0x80000001u, UINT32_MAX};
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++)
        for (int i = 0; i < 2000; i++) {
            uint32_t v = ip_rng_below(&r, ns[t]);
            cr_assert_lt(v, ns[t], "below(%u) gave %u", ns[t], v);
        }
    int hits[10] = {0};
    for (int i = 0; i < 10000; i++) hits[ip_rng_below(&r, 10)]++;
    for (int k = 0; k < 10; k++) cr_assert(hits[k] > 850 && hits[k] < 1150, "bucket %d: %d", k, hits[k]);
}

Test(rng, permutation_valid_and_deterministic) {
    const size_t n = 1000;
    uint32_t *p = malloc(n * sizeof *p), *q = malloc(n * sizeof *q);
    char *seen = calloc(n, 1);
    ip_rng a, b;
    ip_rng_init(&a, 9, ip_stream("perm", 0));
    ip_rng_init(&b, 9, ip_stream("perm", 0));
    ip_rng_permutation(&a, p, n);
    ip_rng_permutation(&b, q, n);
    cr_assert(memcmp(p, q, n * sizeof *p) == 0);
    size_t fixed = 0;
    for (size_t i = 0; i < n; i++) {
        cr_assert_lt(p[i], n);
        cr_assert_eq(seen[p[i]], 0, "duplicate %u", p[i]);
        seen[p[i]] = 1;
        fixed += p[i] == i;
    }
    cr_assert_lt(fixed, 10, "%zu fixed points: not shuffled", fixed);
    uint32_t one = 99;
    ip_rng_permutation(&a, &one, 1);
    cr_assert_eq(one, 0);
    ip_rng_permutation(&a, NULL, 0);
    free(p);
    free(q);
    free(seen);
}
