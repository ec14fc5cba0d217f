/* Evaluation records (evalrec.h). */
#include "evalrec.h"

#include <string.h>

#include "../util/digest.h"

static int use_records = 1;
static uint64_t hits;

void ip_eval_records_use(int on) { use_records = on != 0; }
int ip_eval_records_used(void) { return use_records; }
uint64_t ip_eval_record_hits(void) { return __atomic_load_n(&hits, __ATOMIC_RELAXED); }

static uint64_t chain_str(uint64_t h, const char *s, size_t cap) { return ip_xxh64(s, strnlen(s, cap), h); }

uint64_t ip_model_digest(const ip_model *m) {
    const ip_model_cfg *c = &m->cfg;
    /* the configuration by value (strings to their NUL, every int as int32:
     * no padding bytes): what ip_model_build makes the network from */
    uint64_t h = chain_str(0, c->arch, sizeof c->arch);
    int32_t ints[] = {c->in_c, c->in_h, c->in_w, c->classes, (int32_t)c->norm, (int32_t)c->scheme,
                      c->protocol, c->conv, m->npassports};
    h = ip_xxh64(ints, sizeof ints, h);
    const size_t nc = c->in_c > 0 && c->in_c <= 4 ? (size_t)c->in_c : 0;
    h = ip_xxh64(c->in_mean, nc * sizeof(float), h);
    h = ip_xxh64(c->in_std, nc * sizeof(float), h);
    h = ip_xxh64(&m->bn_eps, sizeof m->bn_eps, h);
    /* the passport layers as built (the configuration may say "default"), their bits */
    for (int i = 0; i < m->npassports; i++) {
        const ip_passport *p = &m->passports[i];
        h = chain_str(h, p->layer, sizeof p->layer);
        h = ip_xxh64(&p->cout, sizeof p->cout, h);
        h = ip_xxh64(p->bits, (size_t)p->cout, h);
    }
    h = ip_xxh64(m->params, m->nparams * sizeof(float), h);
    return ip_xxh64(m->bufs, m->nbufs * sizeof(float), h);
}

uint64_t ip_data_digest(const ip_dataset *d) {
    uint64_t n = d->n;
    int32_t ints[] = {d->c, d->h, d->w, d->classes, d->normalised};
    uint64_t h = ip_xxh64(&n, sizeof n, 0);
    h = ip_xxh64(ints, sizeof ints, h);
    const size_t nc = d->c > 0 && d->c <= 4 ? (size_t)d->c : 0;
    h = ip_xxh64(d->mean, nc * sizeof(float), h);
    h = ip_xxh64(d->std, nc * sizeof(float), h);
    h = ip_xxh64(d->x, d->n * (size_t)d->c * d->h * d->w * sizeof(float), h);
    return ip_xxh64(d->y, d->n * sizeof(int32_t), h);
}

void ip_eval_record_key(ip_eval_record *k, const ip_model *m, const ip_dataset *d, int pass) {
    memset(k, 0, sizeof *k);
    k->model = ip_model_digest(m);
    k->data = ip_data_digest(d);
    k->pass = pass;
    k->branch = (int32_t)m->branch;
}

static int same_key(const ip_eval_record *a, const ip_eval_record *b) {
    return a->model == b->model && a->data == b->data && a->pass == b->pass && a->branch == b->branch;
}

int ip_eval_record_find(const ip_model *m, const ip_eval_record *k, double *acc) {
    for (int i = m->nevals - 1; i >= 0; i--)
        if (same_key(&m->evals[i], k)) {
            *acc = m->evals[i].acc;
            __atomic_fetch_add(&hits, 1, __ATOMIC_RELAXED);
            return 1;
        }
    return 0;
}

void ip_eval_record_add(ip_model *m, const ip_eval_record *k, double acc) {
    for (int i = 0; i < m->nevals; i++)
        if (same_key(&m->evals[i], k)) { /* recomputed: keep the newest value */
            m->evals[i].acc = acc;
            return;
        }
    if (m->nevals == IP_EVAL_RECORDS) {
        memmove(m->evals, m->evals + 1, (IP_EVAL_RECORDS - 1) * sizeof *m->evals);
        m->nevals--;
    }
    m->evals[m->nevals] = *k;
    m->evals[m->nevals++].acc = acc;
}
