/* Counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
 *
 * A generator is keyed by (seed, stream); the n-th number it produces depends
 * only on (seed, stream, n), never on which process or thread asks, so a task
 * computes the same numbers on 1 rank or 64. Streams are derived from names
 * and indices with ip_stream(), e.g. ip_stream("init", layer_index). */
#ifndef IP_RNG_H
#define IP_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct ip_rng {
    uint32_t key[2];   /* the seed */
    uint32_t ctr[4];   /* ctr[0..1] = block counter, ctr[2..3] = stream */
    uint32_t out[4];   /* the current block of 4 outputs */
    int used;          /* how many of out[] were consumed (4 = refill) */
    int have_spare;    /* Box-Muller produces normals in pairs */
    float spare;
} ip_rng;

/* FNV-1a 64 of a string: the one string hash (stream ids, spec hashes, hash tables). */
uint64_t ip_fnv1a(const char *s);
/* FNV-1a 64 continued over n bytes (start from IP_FNV1A_INIT, or chain). */
#define IP_FNV1A_INIT 0xcbf29ce484222325ULL
uint64_t ip_fnv1a_bytes(uint64_t h, const void *data, size_t n);
/* 64-bit stream id from a purpose string and an index (FNV-1a + splitmix). */
uint64_t ip_stream(const char *purpose, uint64_t index);

void ip_rng_init(ip_rng *r, uint64_t seed, uint64_t stream);
uint32_t ip_rng_u32(ip_rng *r);
/* Uniform float in [0, 1) with 24 random bits. */
float ip_rng_uniform(ip_rng *r);
/* Uniform float in [lo, hi). */
float ip_rng_range(ip_rng *r, float lo, float hi);
/* Standard normal (Box-Muller). */
float ip_rng_normal(ip_rng *r);
/* Uniform integer in [0, n), unbiased (rejection). n > 0. */
uint32_t ip_rng_below(ip_rng *r, uint32_t n);
/* Fisher-Yates permutation of 0..n-1 into perm. */
void ip_rng_permutation(ip_rng *r, uint32_t *perm, size_t n);

/* The raw Philox4x32-10 block function, exposed for the known-answer test. */
void ip_philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

#endif
