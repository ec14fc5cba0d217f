/* Packing tasks (coordinator -> worker) and their results (back) into byte
 * buffers for MPI messages. A task travels with its typed values, so a
 * worker needs neither the spec nor the expanded task table. */
#ifndef RN_WIRE_H
#define RN_WIRE_H

#include <stddef.h>

#include "../../core/util/arena.h"
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
/* Appends / reads one task: its kind, id, shard, threads, seed, output path
 * and typed values. Unpack puts the values and strings in `a` (free it when the task is
 * done). What only people read does not travel: the key, the entry name, the
 * values' texts (a string's text is its value), the dependencies. */
int rn_pack_task(rn_buf *b, const rn_task *t);
int rn_unpack_task(rn_buf *b, rn_task *t, ip_arena *a);

/* A worker's word on its running task (rn_task_progress, worker ->
 * coordinator). Fixed size, so a worker sends it from a small buffer of its
 * own without blocking. Unpack returns -1 on a malformed message (wrong
 * size, a fraction outside [0, 1], negative or non-finite seconds). */
#define RN_PROGRESS_MSG_BYTES 20
void rn_pack_progress(unsigned char out[RN_PROGRESS_MSG_BYTES], const rn_task_progress *p);
int rn_unpack_progress(const unsigned char *in, size_t len, rn_task_progress *p);

#endif
