/* Checkpoints inside long tasks (resume.h). */
#include "resume.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../util/checked.h"
#include "../util/proc.h"
#include "../util/stop.h"

int ip_saver_open(ip_saver *s, const ip_resume *r, uint64_t ident, ip_err *e) {
    memset(s, 0, sizeof *s);
    if (r) s->r = *r;
    s->ident = ident;
    s->last = ip_now_s();
    if (!s->r.path[0]) return 0;
    int rc = ip_state_load(&s->loaded, s->r.path, ident, e);
    if (rc < 0) return -1;
    s->resumed = rc;
    return rc;
}

int ip_saver_point(ip_saver *s, ip_state_fill fill, void *user, const char *where, ip_err *e) {
    int stop = ip_stop_requested();
    if (!stop && (s->r.every <= 0 || ip_now_s() - s->last < s->r.every)) return 0;
    if (s->r.path[0]) {
        ip_state_part parts[IP_STATE_MAX_PARTS];
        int n = 0;
        if (fill(user, parts, &n, e) != 0) return -1;
        if (ip_state_save(s->r.path, s->ident, parts, n, e) != 0) return -1;
        s->saves++;
        s->last = ip_now_s();
    }
    if (!stop) return 0;
    if (s->r.path[0]) return ip_fail_interrupted(e, "interrupted at %s; state saved to %s", where, s->r.path);
    return ip_fail_interrupted(e, "interrupted at %s (no state file: it starts over)", where);
}

void ip_saver_close(ip_saver *s) {
    ip_state_free(&s->loaded);
    free(s->blob);
    s->blob = NULL, s->blob_cap = 0;
}

void ip_saver_done(ip_saver *s) {
    if (s->r.path[0] && unlink(s->r.path) != 0 && errno != ENOENT) { /* a leftover is ignored by ident: harmless */
    }
    ip_saver_close(s);
}

int ip_state_add(ip_state_part *parts, int *nparts, const char *name, const void *data, size_t bytes) {
    if (*nparts >= IP_STATE_MAX_PARTS || strlen(name) >= IP_STATE_NAME_LEN) return -1;
    ip_state_part *p = &parts[(*nparts)++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->data = data, p->bytes = bytes;
    return 0;
}

static size_t model_bits(const ip_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->npassports; i++) n += (size_t)m->passports[i].cout;
    return n;
}

static void part_name(char *out, const char *prefix, const char *name) {
    snprintf(out, IP_STATE_NAME_LEN, "%s%s", prefix, name);
}

int ip_state_add_model(ip_state_part *parts, int *nparts, const char *prefix, const ip_model *m) {
    char a[IP_STATE_NAME_LEN], b[IP_STATE_NAME_LEN], c[IP_STATE_NAME_LEN];
    part_name(a, prefix, "params"), part_name(b, prefix, "bufs"), part_name(c, prefix, "bits");
    return ip_state_add(parts, nparts, a, m->params, m->nparams * sizeof(float)) |
           ip_state_add(parts, nparts, b, m->bufs, m->nbufs * sizeof(float)) |
           ip_state_add(parts, nparts, c, m->bits_store, model_bits(m));
}

int ip_state_get_model(const ip_saver *s, const char *prefix, ip_model *m, ip_err *e) {
    char a[IP_STATE_NAME_LEN], b[IP_STATE_NAME_LEN], c[IP_STATE_NAME_LEN];
    part_name(a, prefix, "params"), part_name(b, prefix, "bufs"), part_name(c, prefix, "bits");
    if (ip_state_get(&s->loaded, s->r.path, a, m->params, m->nparams * sizeof(float), e) != 0 ||
        ip_state_get(&s->loaded, s->r.path, b, m->bufs, m->nbufs * sizeof(float), e) != 0 ||
        ip_state_get(&s->loaded, s->r.path, c, m->bits_store, model_bits(m), e) != 0)
        return -1;
    ip_model_passports_changed(m);
    return 0;
}

int ip_state_add_optim(ip_state_part *parts, int *nparts, const char *prefix, const ip_optim *o) {
    char a[IP_STATE_NAME_LEN], b[IP_STATE_NAME_LEN];
    part_name(a, prefix, "moments"), part_name(b, prefix, "steps");
    size_t per = o->cfg.kind == IP_OPT_ADAM ? 2 : 1;
    return ip_state_add(parts, nparts, a, o->state, per * o->n * sizeof(float)) |
           ip_state_add(parts, nparts, b, &o->t, sizeof o->t);
}

int ip_state_get_optim(const ip_saver *s, const char *prefix, ip_optim *o, ip_err *e) {
    char a[IP_STATE_NAME_LEN], b[IP_STATE_NAME_LEN];
    part_name(a, prefix, "moments"), part_name(b, prefix, "steps");
    size_t per = o->cfg.kind == IP_OPT_ADAM ? 2 : 1;
    if (ip_state_get(&s->loaded, s->r.path, a, o->state, per * o->n * sizeof(float), e) != 0 ||
        ip_state_get(&s->loaded, s->r.path, b, &o->t, sizeof o->t, e) != 0)
        return -1;
    return 0;
}

/* Serialised metrics: int32 nscalars, narrays; per scalar name[48] + double;
 * per array name[48] + uint64 n + n doubles. */
static int blob_put(ip_saver *s, size_t *len, const void *p, size_t n, ip_err *e) {
    size_t need;
    if (ip_add_size(*len, n, &need) != 0) return ip_fail(e, "metrics too large to save");
    if (need > s->blob_cap) {
        size_t cap = s->blob_cap ? s->blob_cap : 1024;
        while (cap < need) cap *= 2;
        unsigned char *b = realloc(s->blob, cap);
        if (!b) return ip_fail(e, "out of memory saving metrics");
        s->blob = b, s->blob_cap = cap;
    }
    memcpy(s->blob + *len, p, n);
    *len = need;
    return 0;
}

/* A name NUL-padded to its field: the bytes after a metric's NUL are
 * whatever its table held (the reader refuses a name without a final NUL,
 * and a state should not carry stray memory). */
static int blob_put_name(ip_saver *s, size_t *len, const char *name, ip_err *e) {
    char padded[IP_METRIC_NAME_LEN] = {0};
    snprintf(padded, sizeof padded, "%s", name);
    return blob_put(s, len, padded, sizeof padded, e);
}

int ip_state_add_metrics(ip_saver *s, ip_state_part *parts, int *nparts, const ip_metrics *mt, ip_err *e) {
    size_t len = 0;
    int32_t counts[2] = {mt->nscalars, mt->narrays};
    if (blob_put(s, &len, counts, sizeof counts, e) != 0) return -1;
    for (int i = 0; i < mt->nscalars; i++)
        if (blob_put_name(s, &len, mt->names[i], e) != 0 || blob_put(s, &len, &mt->values[i], sizeof(double), e) != 0)
            return -1;
    for (int i = 0; i < mt->narrays; i++) {
        uint64_t n = mt->arrays[i].n;
        if (blob_put_name(s, &len, mt->arrays[i].name, e) != 0 ||
            blob_put(s, &len, &n, sizeof n, e) != 0 ||
            blob_put(s, &len, mt->arrays[i].v, mt->arrays[i].n * sizeof(double), e) != 0)
            return -1;
    }
    if (ip_state_add(parts, nparts, "metrics", s->blob, len) != 0) return ip_fail(e, "too many state parts");
    return 0;
}

int ip_state_get_metrics(const ip_saver *s, ip_metrics *mt, ip_err *e) {
    const ip_state_part *p = ip_state_find(&s->loaded, "metrics");
    const char *path = s->r.path;
    if (!p) return ip_fail_input(e, "task state %s has no part metrics: delete it to start the task over", path);
    const unsigned char *b = p->data;
    size_t off = 0, end = p->bytes;
#define TAKE(dst, n)                                                                                             \
    do {                                                                                                         \
        if ((n) > end - off) goto bad;                                                                           \
        memcpy((dst), b + off, (n));                                                                             \
        off += (n);                                                                                              \
    } while (0)
    int32_t counts[2];
    if (end < sizeof counts) goto bad;
    TAKE(counts, sizeof counts);
    if (counts[0] < 0 || counts[0] > IP_METRICS_MAX_SCALARS || counts[1] < 0 || counts[1] > IP_METRICS_MAX_ARRAYS)
        goto bad;
    ip_metrics_free(mt);
    for (int i = 0; i < counts[0]; i++) {
        char name[IP_METRIC_NAME_LEN];
        double v;
        TAKE(name, sizeof name);
        TAKE(&v, sizeof v);
        if (name[IP_METRIC_NAME_LEN - 1] != 0 || ip_metrics_set(mt, name, v, e) != 0) goto bad;
    }
    for (int i = 0; i < counts[1]; i++) {
        char name[IP_METRIC_NAME_LEN];
        uint64_t n;
        TAKE(name, sizeof name);
        TAKE(&n, sizeof n);
        size_t bytes;
        if (name[IP_METRIC_NAME_LEN - 1] != 0 || n > SIZE_MAX || ip_mul_size((size_t)n, sizeof(double), &bytes) != 0 ||
            bytes > end - off)
            goto bad;
        /* the doubles may be unaligned in the file: copy them out */
        double *v = malloc(bytes ? bytes : 1);
        if (!v) return ip_fail(e, "out of memory restoring metrics");
        memcpy(v, b + off, bytes);
        off += bytes;
        int rc = ip_metrics_set_array(mt, name, v, (size_t)n, e);
        free(v);
        if (rc != 0) goto bad;
    }
#undef TAKE
    if (off != end) goto bad;
    return 0;
bad:
    ip_metrics_free(mt);
    return ip_fail_input(e, "task state %s: its metrics part is malformed: delete it to start the task over", path);
}
