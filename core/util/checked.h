/* Checked size arithmetic for every size computed from a file (a header's
 * count, a stored shape): a crafted file must give an error naming the file,
 * never a wrapped size, a short allocation or signed overflow. Each returns
 * 0 and stores the result, or -1 (out untouched) when it would overflow. */
#ifndef IP_CHECKED_H
#define IP_CHECKED_H

#include <stddef.h>

static inline int ip_mul_size(size_t a, size_t b, size_t *out) {
    size_t r;
    if (__builtin_mul_overflow(a, b, &r)) return -1;
    *out = r;
    return 0;
}

static inline int ip_add_size(size_t a, size_t b, size_t *out) {
    size_t r;
    if (__builtin_add_overflow(a, b, &r)) return -1;
    *out = r;
    return 0;
}

/* a * b * c */
static inline int ip_mul3_size(size_t a, size_t b, size_t c, size_t *out) {
    size_t r;
    if (ip_mul_size(a, b, &r) != 0 || ip_mul_size(r, c, &r) != 0) return -1;
    *out = r;
    return 0;
}

#endif
