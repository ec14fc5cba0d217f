/* XXH64 (Yann Collet's xxHash, 64-bit), the content digest of the evaluation
 * records (core/model/evalrec.h): fast enough to hash a test split and a
 * model's weights before every evaluation (several GB/s), and a published
 * algorithm, so a record can be checked from outside (python-xxhash's
 * xxh64_intdigest gives the same values). Not for adversaries: a digest
 * names content that ipsweep itself produced. */
#ifndef IP_DIGEST_H
#define IP_DIGEST_H

#include <stddef.h>
#include <stdint.h>

/* XXH64 of n bytes with a seed; chain pieces by passing one digest as the
 * next piece's seed. */
uint64_t ip_xxh64(const void *data, size_t n, uint64_t seed);

#endif
