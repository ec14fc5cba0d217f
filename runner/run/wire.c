#include "wire.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../kinds/kinds.h"

void rn_buf_free(rn_buf *b) {
    free(b->p);
    memset(b, 0, sizeof *b);
}

int rn_buf_put(rn_buf *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        unsigned char *p = realloc(b->p, cap);
        if (!p) return -1;
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
    return 0;
}

int rn_buf_get(rn_buf *b, void *data, size_t n) {
    if (b->pos + n > b->len) return -1;
    memcpy(data, b->p + b->pos, n);
    b->pos += n;
    return 0;
}

static int put_str(rn_buf *b, const char *s) {
    uint32_t n = (uint32_t)strlen(s);
    return rn_buf_put(b, &n, sizeof n) || rn_buf_put(b, s, n);
}

static int get_str(rn_buf *b, char *s, size_t cap) {
    uint32_t n;
    if (rn_buf_get(b, &n, sizeof n) || n >= cap) return -1;
    if (rn_buf_get(b, s, n)) return -1;
    s[n] = 0;
    return 0;
}

int rn_pack_result(rn_buf *b, const rn_result *r) {
    int32_t head[3] = {r->task, (int32_t)r->status, r->rank};
    int32_t counts[2] = {r->metrics.nscalars, r->metrics.narrays};
    if (rn_buf_put(b, head, sizeof head) || rn_buf_put(b, &r->wall_seconds, sizeof r->wall_seconds) ||
        put_str(b, r->error) || rn_buf_put(b, counts, sizeof counts))
        return -1;
    for (int i = 0; i < r->metrics.nscalars; i++)
        if (put_str(b, r->metrics.names[i]) || rn_buf_put(b, &r->metrics.values[i], sizeof(double))) return -1;
    for (int i = 0; i < r->metrics.narrays; i++) {
        const ip_metric_array *a = &r->metrics.arrays[i];
        uint64_t n = a->n;
        if (put_str(b, a->name) || rn_buf_put(b, &n, sizeof n) || rn_buf_put(b, a->v, n * sizeof(double))) return -1;
    }
    return 0;
}

int rn_unpack_result(rn_buf *b, rn_result *r) {
    memset(r, 0, sizeof *r);
    int32_t head[3], counts[2];
    if (rn_buf_get(b, head, sizeof head) || rn_buf_get(b, &r->wall_seconds, sizeof r->wall_seconds) ||
        get_str(b, r->error, sizeof r->error) || rn_buf_get(b, counts, sizeof counts))
        return -1;
    r->task = head[0], r->status = (rn_status)head[1], r->rank = head[2];
    if (counts[0] < 0 || counts[0] > IP_METRICS_MAX_SCALARS || counts[1] < 0 || counts[1] > IP_METRICS_MAX_ARRAYS)
        return -1;
    for (int i = 0; i < counts[0]; i++) {
        char name[IP_METRIC_NAME_LEN];
        double v;
        if (get_str(b, name, sizeof name) || rn_buf_get(b, &v, sizeof v) || ip_metrics_set(&r->metrics, name, v, NULL))
            goto fail;
    }
    for (int i = 0; i < counts[1]; i++) {
        char name[IP_METRIC_NAME_LEN];
        uint64_t n;
        if (get_str(b, name, sizeof name) || rn_buf_get(b, &n, sizeof n) || n > (b->len - b->pos) / sizeof(double))
            goto fail;
        /* copy out first: the values need not be aligned inside the buffer */
        double *tmp = malloc((n ? n : 1) * sizeof *tmp);
        int bad = !tmp || rn_buf_get(b, tmp, (size_t)n * sizeof *tmp) ||
                  ip_metrics_set_array(&r->metrics, name, tmp, (size_t)n, NULL);
        free(tmp);
        if (bad) goto fail;
    }
    return 0;
fail:
    ip_metrics_free(&r->metrics);
    return -1;
}

/* a string read into the arena */
static const char *get_astr(rn_buf *b, ip_arena *a) {
    uint32_t n;
    if (rn_buf_get(b, &n, sizeof n) || n > b->len - b->pos) return NULL;
    char *s = ip_arena_alloc(a, (size_t)n + 1);
    if (!s || rn_buf_get(b, s, n)) return NULL;
    s[n] = 0;
    return s;
}

int rn_pack_task(rn_buf *b, const rn_task *t) {
    const ip_task_def *d = t->k->def;
    int32_t head[5] = {t->id, rn_kind_index(t->k), t->shard, t->shards, t->threads};
    if (rn_buf_put(b, head, sizeof head) || rn_buf_put(b, &t->seed, sizeof t->seed) || put_str(b, t->checkpoint))
        return -1;
    for (int q = 0; q < d->nparams; q++) {
        const ip_value *v = &t->vals[q];
        /* only what the fill reads: a value's text is for people (keys,
         * results), and without it a batch of small tasks stays within MPI's
         * eager limit (sent at once, no rendezvous) */
        switch (d->params[q].type) {
        case IP_P_FLOAT:
            if (rn_buf_put(b, &v->u.f, sizeof v->u.f)) return -1;
            break;
        case IP_P_STRING:
        case IP_P_MODEL:
        case IP_P_FINGERPRINT:
        case IP_P_COPIES:
        case IP_P_OTHERS:
            if (put_str(b, v->u.s ? v->u.s : "")) return -1;
            break;
        case IP_P_INTLIST: {
            int32_t n = v->u.list ? v->u.list[0] : 0;
            if (rn_buf_put(b, &n, sizeof n) || (n && rn_buf_put(b, v->u.list + 1, (size_t)n * sizeof(int32_t)))) return -1;
            break;
        }
        default:
            if (rn_buf_put(b, &v->u.i, sizeof v->u.i)) return -1;
        }
    }
    return 0;
}

int rn_unpack_task(rn_buf *b, rn_task *t, ip_arena *a) {
    int32_t head[5];
    memset(t, 0, sizeof *t);
    if (rn_buf_get(b, head, sizeof head) || head[1] < 0 || head[4] < 0 || head[4] > RN_MAX_THREADS) return -1;
    int nk = 0;
    while (rn_kinds[nk]) nk++;
    if (head[1] >= nk) return -1;
    t->id = head[0], t->k = rn_kinds[head[1]], t->shard = head[2], t->shards = head[3];
    t->threads = (uint16_t)head[4];
    t->kind = t->k->def->name;
    t->key = t->name = "";
    if (rn_buf_get(b, &t->seed, sizeof t->seed) || !(t->checkpoint = get_astr(b, a))) return -1;
    const ip_task_def *d = t->k->def;
    ip_value *vals = ip_arena_alloc(a, (size_t)(d->nparams ? d->nparams : 1) * sizeof *vals);
    if (!vals) return -1;
    for (int q = 0; q < d->nparams; q++) {
        ip_value *v = &vals[q];
        v->text = ""; /* not sent (rn_pack_task) */
        switch (d->params[q].type) {
        case IP_P_FLOAT:
            if (rn_buf_get(b, &v->u.f, sizeof v->u.f)) return -1;
            break;
        case IP_P_STRING:
        case IP_P_MODEL:
        case IP_P_FINGERPRINT:
        case IP_P_COPIES:
        case IP_P_OTHERS:
            if (!(v->u.s = get_astr(b, a))) return -1;
            v->text = v->u.s;
            break;
        case IP_P_INTLIST: {
            int32_t n;
            if (rn_buf_get(b, &n, sizeof n) || n < 0 || n > IP_MAX_INT_LIST) return -1;
            int32_t *l = ip_arena_alloc(a, (size_t)(1 + n) * sizeof *l);
            if (!l || (n && rn_buf_get(b, l + 1, (size_t)n * sizeof *l))) return -1;
            l[0] = n;
            v->u.list = l;
            break;
        }
        default:
            if (rn_buf_get(b, &v->u.i, sizeof v->u.i)) return -1;
        }
    }
    t->vals = vals;
    return 0;
}

void rn_pack_progress(unsigned char out[RN_PROGRESS_MSG_BYTES], const rn_task_progress *p) {
    int32_t task = p->task;
    memcpy(out, &task, 4);
    memcpy(out + 4, &p->fraction, 8);
    memcpy(out + 12, &p->seconds, 8);
}

int rn_unpack_progress(const unsigned char *in, size_t len, rn_task_progress *p) {
    int32_t task;
    if (len != RN_PROGRESS_MSG_BYTES) return -1;
    memcpy(&task, in, 4);
    memcpy(&p->fraction, in + 4, 8);
    memcpy(&p->seconds, in + 12, 8);
    p->task = task;
    if (task < 0 || !(p->fraction >= 0 && p->fraction <= 1) || !(p->seconds >= 0) || isinf(p->seconds)) return -1;
    return 0;
}
