/* Packing task results into byte buffers for MPI messages. */
#ifndef RN_WIRE_H
#define RN_WIRE_H

#include <stddef.h>

#include "sched.h"

typedef struct rn_buf {
    unsigned char *p;
    size_t len, cap, pos;    /* pos: read cursor */
} rn_buf;

void rn_buf_free(rn_buf *b);
int rn_buf_put(rn_buf *b, const void *data, size_t n);
int rn_buf_get(rn_buf *b, void *data, size_t n);
/* Appends / reads one result (metrics included). Unpack allocates the
 * metrics' arrays (free with ip_metrics_free). Return -1 on overflow/short buffer. */
int rn_pack_result(rn_buf *b, const rn_result *r);
int rn_unpack_result(rn_buf *b, rn_result *r);

#endif
