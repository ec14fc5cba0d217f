#include "rng.h"

#include <string.h>

#include <math.h>

/* Philox4x32-10 constants (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11). */
#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static inline void mulhilo(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo) {
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

void ip_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
    uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint32_t hi0, lo0, hi1, lo1;
        mulhilo(PHILOX_M0, c0, &hi0, &lo0);
        mulhilo(PHILOX_M1, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

static uint64_t splitmix64(uint64_t x) {
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

uint64_t ip_fnv1a_bytes(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t ip_fnv1a(const char *s) { return ip_fnv1a_bytes(IP_FNV1A_INIT, s ? s : "", s ? strlen(s) : 0); }

uint64_t ip_stream(const char *purpose, uint64_t index) {
    return splitmix64(ip_fnv1a(purpose) ^ splitmix64(index));
}

void ip_rng_init(ip_rng *r, uint64_t seed, uint64_t stream) {
    r->key[0] = (uint32_t)seed;
    r->key[1] = (uint32_t)(seed >> 32);
    r->ctr[0] = 0;
    r->ctr[1] = 0;
    r->ctr[2] = (uint32_t)stream;
    r->ctr[3] = (uint32_t)(stream >> 32);
    r->used = 4;
    r->have_spare = 0;
    r->spare = 0;
}

uint32_t ip_rng_u32(ip_rng *r) {
    if (r->used == 4) {
        ip_philox4x32_10(r->ctr, r->key, r->out);
        if (++r->ctr[0] == 0) r->ctr[1]++;
        r->used = 0;
    }
    return r->out[r->used++];
}

float ip_rng_uniform(ip_rng *r) { return (float)(ip_rng_u32(r) >> 8) * (1.0f / 16777216.0f); }

float ip_rng_range(ip_rng *r, float lo, float hi) {
    float v = lo + (hi - lo) * ip_rng_uniform(r);
    return v < hi ? v : lo; /* rounding can reach hi for wide ranges */
}

float ip_rng_normal(ip_rng *r) {
    if (r->have_spare) {
        r->have_spare = 0;
        return r->spare;
    }
    /* u1 in (0, 1] so the log is finite */
    double u1 = ((double)(ip_rng_u32(r) >> 8) + 1.0) / 16777216.0;
    double u2 = (double)(ip_rng_u32(r) >> 8) / 16777216.0;
    double rad = sqrt(-2.0 * log(u1));
    double th = 6.283185307179586 * u2;
    r->spare = (float)(rad * sin(th));
    r->have_spare = 1;
    return (float)(rad * cos(th));
}

uint32_t ip_rng_below(ip_rng *r, uint32_t n) {
    /* Lemire-free simple rejection: accept values below the largest multiple of n. */
    uint32_t limit = UINT32_MAX - (UINT32_MAX % n);
    uint32_t v;
    do v = ip_rng_u32(r);
    while (v >= limit);
    return v % n;
}

void ip_rng_permutation(ip_rng *r, uint32_t *perm, size_t n) {
    for (size_t i = 0; i < n; i++) perm[i] = (uint32_t)i;
    for (size_t i = n; i > 1; i--) {
        uint32_t j = ip_rng_below(r, (uint32_t)i);
        uint32_t t = perm[i - 1];
        perm[i - 1] = perm[j];
        perm[j] = t;
    }
}
