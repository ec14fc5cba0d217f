/* Fake-passport evaluation: the forge engine (its task code: core/tasks/forge.c).
 * Design and the screen-mode bound: forge.h and docs/passports.md. */
#include "forge.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include "../io/ckpt.h"
#include "../nn/gemm.h"
#include "../nn/layers.h"
#include "../util/rng.h"
#include "../model/train.h"
#include "../util/proc.h"
#include "../util/progress.h"

#define FG_INF 0x3fffffff

static const char *const mode_names[] = {"full", "screen"};

const char *ip_forge_mode_name(ip_forge_mode m) { return (unsigned)m < 2 ? mode_names[m] : "?"; }

int ip_forge_mode_parse(const char *s, ip_forge_mode *out) {
    for (int i = 0; i < 2; i++)
        if (strcmp(s, mode_names[i]) == 0) return *out = (ip_forge_mode)i, 0;
    return -1;
}

void ip_forge_defaults(ip_forge_cfg *c) {
    memset(c, 0, sizeof *c);
    c->mode = IP_FORGE_FULL;
    c->delta = 1e-6;
    c->margin = 0.03;
    c->order_seed = 1;
}

/* Activation ids: the model's, then two "pseudo" activations per fused
 * shared-input passport layer with a max-pool (the 2x2 max and min of its input). */
#define FG_MAX_ACTS (IP_MAX_ACTS + 2 * IP_MAX_PASSPORTS)
#define FG_MAX_STEPS (IP_MAX_OPS + IP_MAX_PASSPORTS)
#define FG_MAX_GROUP 4096

/* What the forge executes: the model's ops, some of them fused (see plan_steps). */
typedef enum {
    ST_OP,        /* one op as is */
    ST_TAIL,      /* [eval batch norm | group norm] -> affine (+ReLU) [-> 2x2 max-pool], one pass */
    ST_EXTREMES,  /* shared: 2x2 max and min of a passport affine's input */
    ST_POOLED     /* passport affine + ReLU + 2x2 max-pool from those extremes */
} fg_kind;

typedef struct fg_step {
    fg_kind kind;
    int virt;               /* runs in the virtual pass (per group) */
    int op;                 /* ST_OP */
    int norm, aff, pool;    /* fused ops (-1 none) */
    int in, in2, out, out2; /* activations read / written (-1 none) */
} fg_step;

typedef struct fg_act {
    int c, h, w;
    size_t per;             /* floats per sample */
    int virt, pinned, used;
    size_t off;             /* floats, in the shared or the virtual arena */
    size_t cache_off;       /* pinned and cached: cache + cache_off + e0 * per */
} fg_act;

struct ip_forge {
    ip_model *m;
    const ip_dataset *d;
    size_t E;
    ip_forge_cfg cfg;
    uint32_t *order;                /* (E) dataset index of the i-th evaluated image */

    fg_act acts[FG_MAX_ACTS];
    int nacts;
    fg_step steps[FG_MAX_STEPS];
    int nsteps;
    int op_virt[IP_MAX_OPS];
    int logits;
    float *bn_mean[IP_MAX_OPS], *bn_rstd[IP_MAX_OPS]; /* fused eval batch norms: per-channel constants
                                                        * (NULL for a fused group norm: per-sample statistics) */
    float *bn_store;

    int ec_max, vb_max, group, block;
    float *sh_arena, *vt_arena, *cache, *work, *stats;
    size_t sh_floats, vt_floats, cache_floats, work_floats, stats_floats;
    uint32_t *argmax;
    size_t argmax_n;
    int cached;
    int32_t *labels;                /* (ec_max) labels of the current chunk */
    int32_t *pred;                  /* (vb_max) */

    /* chunk schedule: chunk k = images [cstart[k], cstart[k+1]) of the order; clook[k]: a test after it */
    int nchunks, looks;
    size_t *cstart;
    uint8_t *clook;

    /* passports: block buffers */
    int L;
    size_t keyfloats;
    float *keys;
    float *st[IP_MAX_PASSPORTS];    /* (2*block x K): colmeans, gamma rows then beta rows */
    float *gb[IP_MAX_PASSPORTS];    /* (Cout x 2*block): gamma columns then beta columns */
    float *gg[IP_MAX_PASSPORTS];    /* (vb_max x Cout) gamma of the current group */
    float *gbeta[IP_MAX_PASSPORTS]; /* (vb_max x Cout) beta */
    int *active;                    /* (block) */
    double planned_mb;
};

/* ------------------------------------------------------------------------- */
/* Planning                                                                  */

static int is_passport_affine(const ip_op *op) { return op->kind == IP_OP_AFFINE && op->passport >= 0; }

static int readers(const ip_model *m, int a) {
    int r = 0;
    for (int i = 0; i < m->nops; i++) r += (m->ops[i].in == a) + (m->ops[i].in2 == a);
    return r;
}

/* Op i + 1 is a 2x2 max-pool and the only reader of op i's output: its index, else -1. */
static int pool_after(const ip_model *m, int i) {
    if (i + 1 >= m->nops) return -1;
    const ip_op *p = &m->ops[i + 1];
    if (p->kind != IP_OP_POOL || p->in != m->ops[i].out || readers(m, p->in) != 1) return -1;
    if (m->acts[p->in].h < 2 || m->acts[p->in].w < 2) return -1;
    return i + 1;
}

static int add_pseudo(ip_forge *f, int c, int h, int w) {
    fg_act *a = &f->acts[f->nacts];
    memset(a, 0, sizeof *a);
    a->c = c, a->h = h, a->w = w, a->per = (size_t)c * h * w;
    return f->nacts++;
}

static fg_step *add_step(ip_forge *f, fg_kind kind, int virt) {
    fg_step *s = &f->steps[f->nsteps++];
    memset(s, 0, sizeof *s);
    s->kind = kind, s->virt = virt;
    s->op = s->norm = s->aff = s->pool = s->in2 = s->out2 = -1;
    return s;
}

/* The steps, in op order. Shared ops (not depending on the passport) run as
 * they are. In the virtual part:
 *   - an eval batch norm or a group norm whose only reader is an affine, that
 *     affine (+ReLU) and a max-pool that is the only reader of the affine's
 *     output run as one ST_TAIL step; an affine alone (+ pool) too;
 *   - a passport affine on a shared input followed by such a pool becomes
 *     ST_EXTREMES (shared: 2x2 max and min of the input) + ST_POOLED.
 * Max-pooling commutes with the tail: y(x) = relu(g * ((x - m) * r) + b) is,
 * in float arithmetic too (rounding is monotonic), non-decreasing in x when
 * g >= 0 (r > 0) and non-increasing when g < 0, so the max of y over a window
 * is y(max x) or y(min x): bit-identical to pooling the tail's output. */
static void plan_steps(ip_forge *f) {
    ip_model *m = f->m;
    f->nacts = m->nacts;
    for (int a = 0; a < m->nacts; a++) {
        fg_act *x = &f->acts[a];
        memset(x, 0, sizeof *x);
        x->c = m->acts[a].c, x->h = m->acts[a].h, x->w = m->acts[a].w;
        x->per = (size_t)x->c * x->h * x->w;
    }
    for (int i = 0; i < m->nops; i++) {
        const ip_op *op = &m->ops[i];
        int v = f->acts[op->in].virt || (op->in2 >= 0 && f->acts[op->in2].virt) || is_passport_affine(op);
        f->op_virt[i] = v;
        f->acts[op->out].virt = v;
    }
    for (int i = 0; i < m->nops; i++) {
        const ip_op *op = &m->ops[i];
        int v = f->op_virt[i];
        /* a group norm, or a batch norm with the running statistics eval mode uses */
        int fusable_norm =
            op->kind == IP_OP_NORM && (op->norm.groups > 0 || (op->running_mean >= 0 && op->running_var >= 0));
        if (v && fusable_norm && i + 1 < m->nops && m->ops[i + 1].kind == IP_OP_AFFINE && m->ops[i + 1].in == op->out &&
            readers(m, op->out) == 1) {
            fg_step *s = add_step(f, ST_TAIL, 1);
            s->norm = i, s->aff = i + 1, s->pool = pool_after(m, i + 1);
            s->in = op->in;
            s->out = m->ops[s->pool >= 0 ? s->pool : i + 1].out;
            i = s->pool >= 0 ? s->pool : i + 1;
            continue;
        }
        if (v && op->kind == IP_OP_AFFINE) {
            int pool = pool_after(m, i);
            if (pool >= 0 && is_passport_affine(op) && !f->acts[op->in].virt) {
                const fg_act *x = &f->acts[op->in];
                fg_step *ex = add_step(f, ST_EXTREMES, 0);
                ex->aff = i, ex->in = op->in;
                ex->out = add_pseudo(f, x->c, x->h / 2, x->w / 2);
                ex->out2 = add_pseudo(f, x->c, x->h / 2, x->w / 2);
                fg_step *s = add_step(f, ST_POOLED, 1);
                s->aff = i, s->pool = pool, s->in = ex->out, s->in2 = ex->out2, s->out = m->ops[pool].out;
            } else {
                fg_step *s = add_step(f, ST_TAIL, 1);
                s->aff = i, s->pool = pool, s->in = op->in, s->out = m->ops[pool >= 0 ? pool : i].out;
            }
            if (pool >= 0) i = pool;
            continue;
        }
        fg_step *s = add_step(f, ST_OP, v);
        s->op = i, s->in = op->in, s->in2 = op->in2, s->out = op->out;
    }
}

/* Step k is a virtual conv whose output only the tail step k + 1 reads: the
 * pair may run as one kernel (run_conv_tail), which reads the conv's input
 * while it writes the tail's output, so the input lives through step k + 1. */
static int conv_tail_pair(const ip_forge *f, int k) {
    if (k + 1 >= f->nsteps) return 0;
    const fg_step *s = &f->steps[k], *t = s + 1;
    if (s->kind != ST_OP || !s->virt || t->kind != ST_TAIL || !t->virt) return 0;
    /* a group norm's statistics need the conv's whole output first */
    if (t->norm >= 0 && f->m->ops[t->norm].norm.groups > 0) return 0;
    const ip_op *op = &f->m->ops[s->op];
    return op->kind == IP_OP_CONV && t->in == op->out && readers(f->m, op->out) == 1;
}

/* First-fit placement of the activations of one arena by liveness (step
 * positions; act a lives from def[a] to last[a]), in floats per sample. */
static size_t place(ip_forge *f, int virt, const int *def, const int *last, size_t *off) {
    size_t total = 0;
    int order[FG_MAX_ACTS], n = 0;
    for (int a = 0; a < f->nacts; a++)
        if (f->acts[a].used && f->acts[a].virt == virt) order[n++] = a;
    /* by definition position (pseudo activations are defined mid-list) */
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && def[order[j]] < def[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    for (int i = 0; i < n; i++) {
        int a = order[i];
        size_t sz = f->acts[a].per, cand = 0;
        for (;;) {
            int moved = 0;
            for (int j = 0; j < i; j++) {
                int b = order[j];
                if (last[b] < def[a]) continue;
                size_t bo = off[b], be = bo + f->acts[b].per;
                if (cand < be && bo < cand + sz) cand = be, moved = 1;
            }
            if (!moved) break;
        }
        off[a] = cand;
        if (cand + sz > total) total = cand + sz;
    }
    return total;
}

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Chunk schedule: boundaries every ec_max images and at the look points first_look * 2^k < E. */
static int make_schedule(ip_forge *f, ip_err *e) {
    size_t E = f->E, look = (size_t)f->cfg.first_look;
    size_t cap = E / (size_t)(f->ec_max > 0 ? f->ec_max : 1) + 66;
    f->cstart = malloc((cap + 1) * sizeof *f->cstart);
    f->clook = calloc(cap + 1, 1);
    if (!f->cstart || !f->clook) return ip_fail(e, "out of memory");
    int k = 0;
    size_t pos = 0, next_look = look;
    f->looks = 0;
    f->cstart[0] = 0;
    while (pos < E) {
        size_t end = pos + (size_t)f->ec_max;
        if (end > E) end = E;
        if (next_look < E && next_look < end) end = next_look;
        if (end == next_look && next_look < E) {
            f->clook[k] = 1;
            f->looks++;
            next_look *= 2;
        }
        f->cstart[++k] = end;
        pos = end;
    }
    f->nchunks = k;
    return 0;
}

void ip_forge_free(ip_forge *f) {
    if (!f) return;
    free(f->order);
    free(f->sh_arena), free(f->vt_arena), free(f->cache), free(f->work), free(f->stats);
    free(f->argmax), free(f->labels), free(f->pred);
    free(f->cstart), free(f->clook);
    free(f->keys), free(f->bn_store);
    for (int l = 0; l < f->L; l++) free(f->st[l]), free(f->gb[l]), free(f->gg[l]), free(f->gbeta[l]);
    free(f->active);
    free(f);
}

/* Buffers of at least 4 MB are 2 MB aligned and asked to be backed by huge
 * pages (a no-op where transparent huge pages are off): touching them then
 * costs one page fault per 2 MB instead of per 4 KB. */
static float *falloc(size_t n) {
    size_t bytes = round16(n ? n : 1) * sizeof(float), huge = (size_t)2 << 20;
    if (bytes < 2 * huge) return aligned_alloc(64, bytes);
    bytes = (bytes + huge - 1) / huge * huge;
    float *p = aligned_alloc(huge, bytes);
#ifdef MADV_HUGEPAGE
    if (p) madvise(p, bytes, MADV_HUGEPAGE);
#endif
    return p;
}

/* Floats of everything except the cache, for a given (ec_max, vb_max, block). */
static size_t plan_floats(ip_forge *f, size_t sh_units, size_t vt_units, int ec, int vb, int block, size_t *work,
                          size_t *stats, size_t *argm) {
    const ip_model *m = f->m;
    size_t w = 0, s = 0, am = 0;
    for (int k = 0; k < f->nsteps; k++) {
        const fg_step *st = &f->steps[k];
        /* the ops with a workspace, statistics or indices: ST_OP's, and a fused group norm (statistics) */
        int gn = st->kind == ST_TAIL && st->norm >= 0 && m->ops[st->norm].norm.groups > 0;
        if (st->kind != ST_OP && !gn) continue;
        const ip_op *op = &m->ops[gn ? st->norm : st->op];
        int n = st->virt ? vb : ec;
        if (op->kind == IP_OP_CONV) {
            ip_conv_shape cs = op->conv;
            cs.n = n;
            size_t ws = ip_conv_workspace_floats(&cs);
            if (ws > w) w = ws;
        } else if (op->kind == IP_OP_NORM) {
            size_t sz = op->norm.groups > 0 ? (size_t)n * op->norm.groups : (size_t)op->norm.c;
            if (2 * sz > s) s = 2 * sz;
        } else if (op->kind == IP_OP_POOL) {
            size_t a = (size_t)op->c * n * op->h * op->w;
            if (a > am) am = a;
        }
    }
    *work = w, *stats = s, *argm = am;
    size_t blk = 0;
    for (int l = 0; l < f->L; l++) {
        const ip_passport *p = &m->passports[l];
        blk += 2 * (size_t)block * p->k + 2 * (size_t)block * p->cout + 2 * (size_t)vb * p->cout;
    }
    return sh_units * round16((size_t)ec) + vt_units * round16((size_t)vb) + w + s + am + blk + f->keyfloats;
}

static void shared_pass(ip_forge *f, size_t e0, int ec);

int ip_forge_create(ip_forge **out, ip_model *m, const ip_dataset *d, size_t n, const ip_forge_cfg *cfg,
                    ip_err *e) {
    *out = NULL;
    if (m->npassports == 0 || m->cfg.scheme == IP_SCHEME_BASELINE)
        return ip_fail(e, "the model (%s, scheme %s) has no passport layers to forge", m->cfg.arch,
                       ip_scheme_name(m->cfg.scheme));
    if (d->c != m->cfg.in_c || d->h != m->cfg.in_h || d->w != m->cfg.in_w)
        return ip_fail(e, "images are %dx%dx%d but the model expects %dx%dx%d", d->c, d->h, d->w, m->cfg.in_c,
                       m->cfg.in_h, m->cfg.in_w);
    if (n == 0 || n > d->n) return ip_fail(e, "need 1..%zu evaluation images, asked for %zu", d->n, n);
    if (n > 0x7fffffff) return ip_fail(e, "too many evaluation images");
    if (cfg->group < 0 || cfg->chunk < 0 || cfg->block < 0 || cfg->virtual_batch < 0)
        return ip_fail(e, "negative forge sizes");
    ip_forge *f = calloc(1, sizeof *f);
    if (!f) return ip_fail(e, "out of memory");
    f->m = m;
    f->d = d;
    f->E = n;
    f->cfg = *cfg;
    if (!(f->cfg.delta > 0 && f->cfg.delta < 1)) f->cfg.delta = 1e-6;
    if (f->cfg.first_look <= 0) f->cfg.first_look = 16;
    if (f->cfg.virtual_batch <= 0) f->cfg.virtual_batch = IP_FORGE_VIRTUAL_BATCH_DEFAULT;
    if (f->cfg.memory_mb <= 0) f->cfg.memory_mb = 1024;
    f->L = m->npassports;
    f->keyfloats = ip_keys_floats(m);

    plan_steps(f);
    f->logits = m->ops[m->nops - 1].out;
    if (!f->acts[f->logits].virt) {
        ip_forge_free(f);
        return ip_fail(e, "the model's output does not depend on its passports");
    }
    /* eval batch-norm constants of the fused tails: norm_forward's float mean and rstd */
    size_t nbn = 0;
    for (int k = 0; k < f->nsteps; k++)
        if (f->steps[k].norm >= 0 && m->ops[f->steps[k].norm].norm.groups == 0)
            nbn += 2 * (size_t)m->ops[f->steps[k].norm].norm.c;
    f->bn_store = malloc((nbn ? nbn : 1) * sizeof(float));
    if (!f->bn_store) {
        ip_forge_free(f);
        return ip_fail(e, "out of memory");
    }
    float *bs = f->bn_store;
    for (int k = 0; k < f->nsteps; k++) {
        int i = f->steps[k].norm;
        if (i < 0 || m->ops[i].norm.groups > 0) continue;
        const ip_op *op = &m->ops[i];
        float *rm, *rv; /* fakes run the private branch */
        ip_model_norm_running(m, op, IP_BRANCH_PRIVATE, &rm, &rv);
        f->bn_mean[i] = bs, bs += op->norm.c;
        f->bn_rstd[i] = bs, bs += op->norm.c;
        for (int c = 0; c < op->norm.c; c++) {
            double mu = rm[c], var = rv[c];
            f->bn_mean[i][c] = (float)mu;
            f->bn_rstd[i][c] = (float)(1.0 / sqrt(var + (double)m->bn_eps));
        }
    }
    /* liveness over step positions; the input (act 0) is defined at -1 */
    int def[FG_MAX_ACTS], last[FG_MAX_ACTS];
    for (int a = 0; a < f->nacts; a++) def[a] = last[a] = -1;
    f->acts[0].used = 1;
    for (int k = 0; k < f->nsteps; k++) {
        const fg_step *s = &f->steps[k];
        int outs[2] = {s->out, s->out2}, ins[2] = {s->in, s->in2};
        for (int j = 0; j < 2; j++)
            if (outs[j] >= 0) def[outs[j]] = last[outs[j]] = k, f->acts[outs[j]].used = 1;
        for (int j = 0; j < 2; j++) {
            int a = ins[j];
            if (a < 0) continue;
            if (k > last[a]) last[a] = k;
            if (s->virt && !f->acts[a].virt) f->acts[a].pinned = 1;
        }
        if (conv_tail_pair(f, k) && k + 1 > last[s->in]) last[s->in] = k + 1;
    }
    last[f->logits] = FG_INF;
    size_t pinned_units = 0;
    for (int a = 0; a < f->nacts; a++)
        if (f->acts[a].pinned) last[a] = FG_INF, pinned_units += f->acts[a].per;
    size_t off_sh[FG_MAX_ACTS] = {0}, off_vt[FG_MAX_ACTS] = {0};
    size_t sh_units = place(f, 0, def, last, off_sh);
    size_t vt_units = place(f, 1, def, last, off_vt);

    /* sizes: chunk, virtual batch, group, block under the memory bound */
    size_t budget = (size_t)(f->cfg.memory_mb * 1e6 / sizeof(float));
    int ec = f->cfg.chunk > 0 ? f->cfg.chunk : 64;
    if ((size_t)ec > n) ec = (int)n;
    int block = f->cfg.block > 0 ? f->cfg.block : IP_FORGE_BLOCK_DEFAULT;
    for (;;) {
        int group = f->cfg.group > 0 ? f->cfg.group : f->cfg.virtual_batch / ec;
        if (group < 1) group = 1;
        int vb = group * ec;
        size_t w, s, am;
        size_t tot = plan_floats(f, sh_units, vt_units, ec, vb, block, &w, &s, &am);
        if (tot <= budget) {
            f->ec_max = ec, f->vb_max = vb, f->group = group, f->block = block;
            f->work_floats = w, f->stats_floats = s, f->argmax_n = am;
            f->planned_mb = tot * 4e-6;
            f->cached = !f->cfg.no_cache && tot + pinned_units * n <= budget;
            break;
        }
        /* shrink: the automatic group first (fewer virtual samples), then the block, then the chunk */
        if (f->cfg.group <= 0 && group > 1) f->cfg.virtual_batch = vb / 2;
        else if (block > 16) block /= 2;
        else if (ec > 1) ec = (ec + 1) / 2;
        else {
            ip_forge_free(f);
            return ip_fail(e, "forging %s needs %.0f MB even with 1 image per pass (memory bound %.0f MB)",
                           m->cfg.arch, tot * 4e-6, f->cfg.memory_mb);
        }
    }
    size_t ec_cap = round16((size_t)f->ec_max), vb_cap = round16((size_t)f->vb_max);
    for (int a = 0; a < f->nacts; a++)
        if (f->acts[a].used) f->acts[a].off = f->acts[a].virt ? off_vt[a] * vb_cap : off_sh[a] * ec_cap;
    f->sh_floats = sh_units * ec_cap;
    f->vt_floats = vt_units * vb_cap;
    f->sh_arena = falloc(f->sh_floats);
    f->vt_arena = falloc(f->vt_floats);
    f->work = falloc(f->work_floats);
    f->stats = falloc(f->stats_floats);
    f->argmax = malloc((f->argmax_n ? f->argmax_n : 1) * sizeof *f->argmax);
    f->labels = malloc((size_t)f->ec_max * sizeof *f->labels);
    f->pred = malloc((size_t)f->vb_max * sizeof *f->pred);
    f->keys = falloc(f->keyfloats);
    f->active = malloc((size_t)f->block * sizeof *f->active);
    f->order = malloc(n * sizeof *f->order);
    int bad = !f->sh_arena || !f->vt_arena || !f->work || !f->stats || !f->argmax || !f->labels || !f->pred ||
              !f->keys || !f->active || !f->order;
    for (int l = 0; l < f->L && !bad; l++) {
        const ip_passport *p = &m->passports[l];
        f->st[l] = falloc(2 * (size_t)f->block * p->k);
        f->gb[l] = falloc(2 * (size_t)f->block * p->cout);
        f->gg[l] = falloc((size_t)f->vb_max * p->cout);
        f->gbeta[l] = falloc((size_t)f->vb_max * p->cout);
        bad = !f->st[l] || !f->gb[l] || !f->gg[l] || !f->gbeta[l];
    }
    if (bad) {
        ip_forge_free(f);
        return ip_fail(e, "out of memory planning the forge (%.0f MB)", f->planned_mb);
    }
    /* touch every page now: first-touch page faults belong to the plan, not to the passports */
    memset(f->sh_arena, 0, f->sh_floats * sizeof(float));
    memset(f->vt_arena, 0, f->vt_floats * sizeof(float));
    memset(f->work, 0, f->work_floats * sizeof(float));
    /* the image order: a uniformly random permutation (screen mode's tests need one; harmless for full) */
    for (size_t i = 0; i < n; i++) f->order[i] = (uint32_t)i;
    ip_rng r;
    ip_rng_init(&r, f->cfg.order_seed, ip_stream("forge-order", 0));
    if (n > 1) ip_rng_permutation(&r, f->order, n);
    if (make_schedule(f, e) != 0) {
        ip_forge_free(f);
        return -1;
    }
    if (f->cached) {
        f->cache_floats = pinned_units * n;
        f->cache = falloc(f->cache_floats);
        if (!f->cache) {
            f->cached = 0; /* fall back to recomputing the shared steps per block */
        } else {
            size_t off = 0;
            for (int a = 0; a < f->nacts; a++)
                if (f->acts[a].pinned) f->acts[a].cache_off = off, off += f->acts[a].per * n;
            /* shared_pass writes the pinned activations straight into the cache (act_ptr) */
            for (int k = 0; k < f->nchunks; k++) shared_pass(f, f->cstart[k], (int)(f->cstart[k + 1] - f->cstart[k]));
            f->planned_mb += f->cache_floats * 4e-6;
        }
    }
    *out = f;
    return 0;
}

void ip_forge_get_info(const ip_forge *f, ip_forge_info *info) {
    info->images = f->E;
    info->chunk = f->ec_max;
    info->group = f->group;
    info->block = f->block;
    info->virtual_batch = f->vb_max;
    info->cached = f->cached;
    info->looks = f->looks;
    info->planned_mb = f->planned_mb;
}

/* ------------------------------------------------------------------------- */
/* Running steps                                                             */

/* Activation a for the chunk starting at e0: shared acts live in the shared
 * arena (or the cache), virtual ones in the virtual arena. */
static float *act_ptr(ip_forge *f, int a, size_t e0) {
    const fg_act *x = &f->acts[a];
    if (x->virt) return f->vt_arena + x->off;
    if (f->cached && x->pinned) return f->cache + x->cache_off + e0 * x->per;
    return f->sh_arena + x->off;
}

static const float *param(const ip_model *m, int t) { return m->params + m->tensors[t].offset; }

/* 2x2 max and min pools of `planes` planes of h x w. */
static void extremes(float *restrict mx, float *restrict mn, const float *restrict x, size_t planes, int h, int w) {
    int oh = h / 2, ow = w / 2;
    for (size_t p = 0; p < planes; p++)
        for (int oy = 0; oy < oh; oy++) {
            const float *r0 = x + p * (size_t)h * w + (size_t)2 * oy * w, *r1 = r0 + w;
            float *a = mx + (p * oh + oy) * (size_t)ow, *b = mn + (p * oh + oy) * (size_t)ow;
            for (int ox = 0; ox < ow; ox++) {
                float u = r0[2 * ox], v = r0[2 * ox + 1], s = r1[2 * ox], t = r1[2 * ox + 1];
                float m1 = u > v ? u : v, m2 = s > t ? s : t, n1 = u < v ? u : v, n2 = s < t ? s : t;
                a[ox] = m1 > m2 ? m1 : m2;
                b[ox] = n1 < n2 ? n1 : n2;
            }
        }
}

/* gamma/beta of affine op `aff` for group member g: the passport's, or the learned ones. */
static void affine_gb(ip_forge *f, const ip_op *aff, int g, const float **gam, const float **bet) {
    if (is_passport_affine(aff)) {
        *gam = f->gg[aff->passport] + (size_t)g * aff->c;
        *bet = f->gbeta[aff->passport] + (size_t)g * aff->c;
    } else {
        *gam = param(f->m, aff->weight);
        *bet = param(f->m, aff->bias);
    }
}

/* The tail of `planes` planes of h x w with one (mean, rstd), pooled (pool-then-tail order) or not. */
static void tail_planes(float *dst, const float *src, size_t planes, int h, int w, int pool, float m, float r,
                        float g, float b, int relu) {
    if (pool) bn_tail_of_pool2x2(dst, src, planes, h, w, m, r, g, b, relu);
    else bn_tail_apply(dst, src, planes * (size_t)h * w, m, r, g, b, relu);
}

static void run_tail(ip_forge *f, const fg_step *s, size_t e0, int n_sh, int ngroup) {
    const ip_op *aff = &f->m->ops[s->aff];
    int n_vt = n_sh * ngroup, vin = f->acts[s->in].virt, n_in = vin ? n_vt : n_sh;
    const float *in = act_ptr(f, s->in, e0);
    float *out = act_ptr(f, s->out, e0);
    int h = aff->h, w = aff->w;
    size_t hw = (size_t)h * w, ohw = s->pool >= 0 ? (size_t)(h / 2) * (w / 2) : hw;
    const float *mu = s->norm >= 0 ? f->bn_mean[s->norm] : NULL, *rs = s->norm >= 0 ? f->bn_rstd[s->norm] : NULL;
    const ip_op *norm = s->norm >= 0 ? &f->m->ops[s->norm] : NULL;
    size_t G = norm && norm->norm.groups > 0 ? (size_t)norm->norm.groups : 0, cpg = G ? (size_t)aff->c / G : 1;
    if (G) { /* group norm: each input sample's statistics, as norm_forward's, in f->stats (plan_floats) */
        ip_norm_shape ns = norm->norm;
        ns.n = n_in;
        norm_group_stats(f->stats, f->stats + ip_norm_stats(&ns), in, &ns, f->m->bn_eps);
    }
    for (int g = 0; g < ngroup; g++) {
        const float *gam, *bet;
        affine_gb(f, aff, g, &gam, &bet);
        size_t first = vin ? (size_t)g * n_sh : 0; /* the group member's first sample in the input */
        for (int c = 0; c < aff->c; c++) {
            const float *src = in + ((size_t)c * n_in + first) * hw;
            float *dst = out + ((size_t)c * n_vt + (size_t)g * n_sh) * ohw;
            if (G) { /* sample by sample, each with its (sample, group) pair */
                const float *gm = f->stats + c / cpg, *gr = gm + (size_t)n_in * G;
                for (size_t j = 0; j < (size_t)n_sh; j++)
                    tail_planes(dst + j * ohw, src + j * hw, 1, h, w, s->pool >= 0, gm[(first + j) * G],
                                gr[(first + j) * G], gam[c], bet[c], aff->relu);
                continue;
            }
            tail_planes(dst, src, (size_t)n_sh, h, w, s->pool >= 0, mu ? mu[c] : 0.f, rs ? rs[c] : 1.f, gam[c], bet[c],
                        aff->relu);
        }
    }
}

static void run_pooled(ip_forge *f, const fg_step *s, size_t e0, int n_sh, int ngroup) {
    const ip_op *aff = &f->m->ops[s->aff];
    const fg_act *xa = &f->acts[s->in];
    size_t ohw = (size_t)xa->h * xa->w, seg = (size_t)n_sh * ohw;
    const float *mx = act_ptr(f, s->in, e0), *mn = act_ptr(f, s->in2, e0);
    float *out = act_ptr(f, s->out, e0);
    int n_vt = n_sh * ngroup;
    for (int g = 0; g < ngroup; g++) {
        const float *gam, *bet;
        affine_gb(f, aff, g, &gam, &bet);
        for (int c = 0; c < aff->c; c++)
            bn_tail_apply(out + ((size_t)c * n_vt + (size_t)g * n_sh) * ohw, (gam[c] < 0 ? mn : mx) + (size_t)c * seg,
                          seg, 0.f, 1.f, gam[c], bet[c], aff->relu);
    }
}

/* Runs op i (ip_op_forward). n_sh: samples of a shared activation (the chunk),
 * n_vt: of a virtual one (group * chunk). Virtual affines never get here (they
 * are tails), so an affine applies its learned gamma/beta. */
static void run_op(ip_forge *f, int i, size_t e0, int n_sh, int ngroup) {
    ip_model *m = f->m;
    const ip_op *op = &m->ops[i];
    int n_vt = n_sh * ngroup;
    ip_op_io io = {.out = act_ptr(f, op->out, e0),
                   .in = act_ptr(f, op->in, e0),
                   .n = f->acts[op->in].virt ? n_vt : n_sh,
                   .training = 0, /* eval mode: running statistics are only read */
                   .branch = IP_BRANCH_PRIVATE, /* fakes run the private branch */
                   .work = f->work,
                   /* im2col + GEMM for every conv, as before the op interpreter was shared: the
                    * direct kernel only takes Cin*KH*KW <= 32 (the first conv), which is shared and,
                    * when cached runs once per plan: switching would move the forger's last bits
                    * for plan time only */
                   .direct_conv = 0,
                   .argmax = f->argmax};
    io.n2 = io.n;
    if (op->in2 >= 0) {
        io.in2 = act_ptr(f, op->in2, e0);
        io.n2 = f->acts[op->in2].virt ? n_vt : n_sh; /* a shared operand is broadcast over the group */
    }
    if (op->kind == IP_OP_NORM) {
        ip_norm_shape ns = op->norm;
        ns.n = io.n;
        io.mean = f->stats, io.rstd = f->stats + ip_norm_stats(&ns);
    }
    ip_op_forward(m, op, &io);
}

/* A conv step s and the tail step after it (conv_tail_pair) as one kernel
 * when the conv runs as Winograd (conv2d_forward_tail: the conv's output is
 * never written; each group member's gamma/beta, and run_tail's pool-then-tail
 * order). 1 when it ran. */
static int run_conv_tail(ip_forge *f, const fg_step *s, size_t e0, int n_sh, int ngroup) {
    if (f->cfg.unfused || !conv_tail_pair(f, (int)(s - f->steps))) return 0;
    const ip_model *m = f->m;
    const fg_step *t = s + 1;
    const ip_op *op = &m->ops[s->op];
    const ip_op *aff = &m->ops[t->aff];
    const int pp = is_passport_affine(aff);
    ip_conv_shape cs = op->conv;
    cs.n = n_sh * ngroup;
    ip_conv_tail ct = {.mean = t->norm >= 0 ? f->bn_mean[t->norm] : NULL,
                       .rstd = t->norm >= 0 ? f->bn_rstd[t->norm] : NULL,
                       .gamma = pp ? f->gg[aff->passport] : param(m, aff->weight),
                       .beta = pp ? f->gbeta[aff->passport] : param(m, aff->bias),
                       .relu = aff->relu,
                       .pool = t->pool >= 0,
                       .set_images = pp ? n_sh : 0,
                       .set_stride = pp ? (size_t)aff->c : 0,
                       .pool_first = 1};
    return conv2d_forward_tail(act_ptr(f, t->out, e0), act_ptr(f, op->in, e0), param(m, op->weight), f->work, &cs,
                               &ct);
}

/* Runs step s (and the one after it when they run as one kernel); returns the steps it ran. */
static int run_step(ip_forge *f, const fg_step *s, size_t e0, int n_sh, int ngroup) {
    switch (s->kind) {
    case ST_OP:
        if (run_conv_tail(f, s, e0, n_sh, ngroup)) return 2;
        run_op(f, s->op, e0, n_sh, ngroup);
        break;
    case ST_TAIL:
        run_tail(f, s, e0, n_sh, ngroup);
        break;
    case ST_EXTREMES: {
        const fg_act *x = &f->acts[s->in];
        extremes(act_ptr(f, s->out, e0), act_ptr(f, s->out2, e0), act_ptr(f, s->in, e0), (size_t)x->c * n_sh, x->h,
                 x->w);
        break;
    }
    case ST_POOLED:
        run_pooled(f, s, e0, n_sh, ngroup);
        break;
    }
    return 1;
}

static void shared_pass(ip_forge *f, size_t e0, int ec) {
    const ip_dataset *d = f->d;
    size_t hw = (size_t)d->h * d->w, sample = (size_t)d->c * hw;
    float *a0 = act_ptr(f, 0, e0);
    for (int i = 0; i < ec; i++) {
        uint32_t idx = f->order[e0 + (size_t)i];
        const float *x = d->x + (size_t)idx * sample;
        for (int c = 0; c < d->c; c++) memcpy(a0 + ((size_t)c * ec + i) * hw, x + (size_t)c * hw, hw * sizeof *a0);
    }
    for (int k = 0; k < f->nsteps;) k += f->steps[k].virt ? 1 : run_step(f, &f->steps[k], e0, ec, 1);
}

/* ------------------------------------------------------------------------- */
/* Evaluating a block of passports whose gamma/beta are in f->gb             */

static void load_labels(ip_forge *f, size_t e0, int ec) {
    for (int i = 0; i < ec; i++) f->labels[i] = f->d->y[f->order[e0 + (size_t)i]];
}

/* Where the current block's gamma/beta are: passport column col has
 * gamma[c] = gb[l][c * ld + col] and beta[c] = gb[l][c * ld + boff + col];
 * column 0 is global passport `base`. */
typedef struct fg_table {
    size_t ld, boff;
    uint64_t base;
} fg_table;

/* Runs one group of ng slots on chunk [e0, e0+ec): slot s evaluates block
 * passport member[s] (its gamma/beta; pad slots, member -1, copy slot `pad`'s
 * and are not counted). Accumulates correct answers and predictions. */
static void run_group(ip_forge *f, const fg_table *t, uint64_t first, const int *member, int ng, size_t e0, int ec,
                      int32_t *correct, int32_t *pred) {
    ip_model *m = f->m;
    int pad = 0;
    while (pad < ng && member[pad] < 0) pad++;
    for (int l = 0; l < f->L; l++) {
        int cout = m->passports[l].cout;
        const float *src = f->gb[l];
        for (int g = 0; g < ng; g++) {
            int p = member[g] >= 0 ? member[g] : member[pad];
            size_t col = (size_t)(first + (uint64_t)p - t->base);
            float *dg = f->gg[l] + (size_t)g * cout, *db = f->gbeta[l] + (size_t)g * cout;
            for (int c = 0; c < cout; c++) dg[c] = src[c * t->ld + col], db[c] = src[c * t->ld + t->boff + col];
        }
    }
    for (int s = 0; s < f->nsteps;) s += f->steps[s].virt ? run_step(f, &f->steps[s], e0, ec, ng) : 1;
    argmax_rows(f->pred, act_ptr(f, f->logits, e0), ng * ec, m->cfg.classes);
    for (int g = 0; g < ng; g++) {
        int p = member[g];
        if (p < 0) continue;
        const int32_t *pr = f->pred + (size_t)g * ec;
        int ok = 0;
        for (int i = 0; i < ec; i++) ok += pr[i] == f->labels[i];
        correct[p] += ok;
        if (pred)
            for (int i = 0; i < ec; i++) pred[(size_t)p * f->E + f->order[e0 + (size_t)i]] = pr[i];
    }
}

/* Evaluates block passports 0..np-1 (global first .. first+np-1); correct and
 * evaluated are per block passport, pred (optional) row p of width E.
 * total > 0: the passports are part of 0..total-1 and, while every passport of
 * the block is still active, groups are aligned to global indices (group q =
 * passports [qG, (q+1)G), padded): a passport then always sits in the same
 * slot of a batch of the same size, so its arithmetic (and result) is the same
 * whatever range the task was given. After a screen-mode test removed some,
 * the active passports are packed. */
static void eval_block(ip_forge *f, const fg_table *t, uint64_t first, int np, uint64_t total, int screen,
                       double threshold, int32_t *correct, int32_t *evaluated, int32_t *pred, double *samples) {
    int nact = np;
    int member[FG_MAX_GROUP];
    for (int p = 0; p < np; p++) f->active[p] = p, correct[p] = 0, evaluated[p] = 0;
    double delta_look = f->looks > 0 ? f->cfg.delta / f->looks : 1;
    for (int k = 0; k < f->nchunks && nact > 0; k++) {
        size_t e0 = f->cstart[k];
        int ec = (int)(f->cstart[k + 1] - e0);
        if (!f->cached) shared_pass(f, e0, ec);
        load_labels(f, e0, ec);
        /* a fixed group, or as many passports as keep the virtual batch at vb_max (short chunks: more),
         * but not more than the passports there are */
        int G = f->cfg.group > 0 ? f->group : f->vb_max / ec;
        if (G > FG_MAX_GROUP) G = FG_MAX_GROUP;
        if (f->cfg.group <= 0 && total > 0 && (uint64_t)G > total) G = (int)total;
        if (G < 1) G = 1;
        if (total > 0 && nact == np) {
            for (uint64_t q = first / (uint64_t)G; q * (uint64_t)G < first + (uint64_t)np; q++) {
                for (int s = 0; s < G; s++) {
                    uint64_t idx = q * (uint64_t)G + (uint64_t)s;
                    member[s] = idx >= first && idx < first + (uint64_t)np ? (int)(idx - first) : -1;
                }
                run_group(f, t, first, member, G, e0, ec, correct, pred);
                *samples += (double)G * ec;
            }
        } else {
            for (int j = 0; j < nact; j += G) {
                int ng = nact - j < G ? nact - j : G;
                for (int g = 0; g < ng; g++) member[g] = f->active[j + g];
                run_group(f, t, first, member, ng, e0, ec, correct, pred);
                *samples += (double)ng * ec;
            }
        }
        for (int j = 0; j < nact; j++) evaluated[f->active[j]] += ec;
        if (screen && f->clook[k]) {
            int keep = 0;
            for (int j = 0; j < nact; j++) {
                int p = f->active[j];
                if (!ip_forge_reject(correct[p], evaluated[p], threshold, delta_look)) f->active[keep++] = p;
            }
            nact = keep;
        }
    }
}

int ip_forge_reject(int32_t c, int32_t n, double t, double delta_look) {
    if (n <= 0 || t <= 0) return 0;
    double a = (double)c / n;
    if (a >= t) return 0;
    if (t >= 1) return 1;
    /* KL(a || t) for Bernoulli, 0 log 0 = 0 */
    double kl = (a > 0 ? a * log(a / t) : 0) + (a < 1 ? (1 - a) * log((1 - a) / (1 - t)) : 0);
    return n * kl >= log(1 / delta_look);
}

static double detect_of(const ip_model *m, int l, const float *gamma, size_t stride) {
    const ip_passport *p = &m->passports[l];
    int ok = 0;
    for (int c = 0; c < p->cout; c++) {
        float g = gamma[(size_t)c * stride];
        ok += (g > 0 && p->bits[c] > 0) || (g < 0 && p->bits[c] < 0);
    }
    return (double)ok / p->cout;
}

int ip_forge_result_alloc(ip_forge_result *r, size_t count, ip_err *e) {
    memset(r, 0, sizeof *r);
    r->count = count;
    size_t c = count ? count : 1;
    r->correct = calloc(c, sizeof *r->correct);
    r->evaluated = calloc(c, sizeof *r->evaluated);
    r->detect = calloc(c, sizeof *r->detect);
    if (!r->correct || !r->evaluated || !r->detect) {
        ip_forge_result_free(r);
        return ip_fail(e, "out of memory for %zu passport results", count);
    }
    return 0;
}

void ip_forge_result_free(ip_forge_result *r) {
    free(r->correct), free(r->evaluated), free(r->detect);
    r->correct = r->evaluated = NULL;
    r->detect = NULL;
}

int ip_forge_keygen_fn(void *ctx, uint64_t index, float *keys, ip_err *e) {
    return ip_keygen_generate(ctx, index, keys, e);
}

int ip_forge_real(ip_forge *f, double *acc, double *detect, ip_forge_result *r, ip_err *e) {
    (void)e;
    double t0 = ip_now_s();
    ip_model *m = f->m;
    ip_model_passport_affine(m);
    for (int l = 0; l < f->L; l++) {
        const ip_passport *p = &m->passports[l];
        for (int c = 0; c < p->cout; c++) f->gb[l][2 * c] = p->gamma[c], f->gb[l][2 * c + 1] = p->beta[c];
    }
    int32_t correct, evaluated;
    double samples = 0;
    fg_table t = {2, 1, 0};
    eval_block(f, &t, 0, 1, 0, 0, 0, &correct, &evaluated, r ? r->pred : NULL, &samples);
    double det = ip_model_detect(m, -1);
    *acc = (double)correct / (double)f->E;
    if (detect) *detect = det;
    if (r) {
        r->correct[0] = correct, r->evaluated[0] = evaluated, r->detect[0] = det;
        r->seconds = ip_now_s() - t0;
        r->samples = samples;
    }
    return 0;
}

int ip_forge_run(ip_forge *f, ip_forge_keys_fn keys_fn, void *ctx, uint64_t first, size_t count, uint64_t total,
                 double threshold, ip_forge_result *r, ip_err *e) {
    return ip_forge_run_from(f, keys_fn, ctx, first, count, total, threshold, r, first, NULL, NULL, e);
}

int ip_forge_run_from(ip_forge *f, ip_forge_keys_fn keys_fn, void *ctx, uint64_t first, size_t count,
                      uint64_t total, double threshold, ip_forge_result *r, uint64_t start, ip_forge_point_fn point,
                      void *point_ctx, ip_err *e) {
    ip_model *m = f->m;
    if (r->count < count) return ip_fail(e, "forge result holds %zu passports, %zu asked", r->count, count);
    if (total > 0 && first + count > total)
        return ip_fail(e, "passports %llu..%llu are not part of %llu", (unsigned long long)first,
                       (unsigned long long)(first + count - 1), (unsigned long long)total);
    uint64_t end = first + count;
    if (start < first || start > end)
        return ip_fail(e, "resuming at passport %llu, outside %llu..%llu", (unsigned long long)start,
                       (unsigned long long)first, (unsigned long long)end);
    double t0 = ip_now_s(), tkeys = 0;
    if (start == first) r->samples = 0;
    int screen = f->cfg.mode == IP_FORGE_SCREEN;
    /* block size: the plan's, or fewer when there are fewer passports (a function of total, so the same for
     * every shard) */
    uint64_t B = (uint64_t)f->block, want = total > 0 ? total : (uint64_t)count;
    if (want > 0 && want < B) B = want;
    /* a resumed run starts where a block of the uninterrupted run starts: at first, then at multiples of B
     * (with total) or at first + k*B (without) */
    if (start != first && start != end && (total > 0 ? start % B : (start - first) % B) != 0)
        return ip_fail(e, "resuming at passport %llu, not the start of a block of %llu from %llu",
                       (unsigned long long)start, (unsigned long long)B, (unsigned long long)first);
    r->seconds = r->key_seconds = 0;
    for (uint64_t s0 = start; s0 < end;) {
        if (point) {
            r->seconds = ip_now_s() - t0, r->key_seconds = tkeys; /* so far: a checkpoint adds them up */
            if (point(point_ctx, s0, r, e) != 0) return -1;
        }
        ip_progress_note((double)(s0 - first), (double)count);
        /* blocks are aligned to global indices: passport i is column i mod B of its block's GEMM
         * (N = 2B always), so its gamma/beta do not depend on the range either */
        uint64_t base = total > 0 ? s0 / B * B : s0, s1 = base + B < end ? base + B : end;
        int np = (int)(s1 - s0), c0 = (int)(s0 - base), c1 = (int)(s1 - base);
        size_t b0 = (size_t)(s0 - first);
        double tk = ip_now_s();
        for (int l = 0; l < f->L; l++) { /* columns of no passport of the range: zero */
            size_t k = m->passports[l].k;
            for (int h = 0; h < 2; h++) {
                float *half = f->st[l] + (size_t)h * B * k;
                memset(half, 0, (size_t)c0 * k * sizeof(float));
                memset(half + (size_t)c1 * k, 0, (size_t)(B - (uint64_t)c1) * k * sizeof(float));
            }
        }
        /* keys -> colmeans (row col: gamma, row B + col: beta) */
        for (int p = 0; p < np; p++) {
            if (keys_fn(ctx, s0 + (uint64_t)p, f->keys, e) != 0)
                return ip_failctx(e, "passport %llu", (unsigned long long)(s0 + (uint64_t)p));
            for (int l = 0; l < f->L; l++) {
                const ip_passport *pp = &m->passports[l];
                ip_conv_shape cs = m->ops[pp->conv_op].conv;
                cs.n = 1;
                const float *kg = f->keys + ip_keys_offset(m, l);
                ip_conv_colmean(f->st[l] + (size_t)(c0 + p) * pp->k, kg, &cs);
                ip_conv_colmean(f->st[l] + ((size_t)B + (size_t)(c0 + p)) * pp->k, kg + ip_keys_layer_floats(m, l), &cs);
            }
        }
        /* gamma/beta of the whole block: one GEMM per layer, (Cout x K) x (K x 2B) */
        for (int l = 0; l < f->L; l++) {
            const ip_passport *pp = &m->passports[l];
            const float *w = param(m, m->ops[pp->conv_op].weight);
            ip_sgemm(CblasNoTrans, CblasTrans, pp->cout, (int)(2 * B), (int)pp->k, 1.f, w,
                        (int)pp->k, f->st[l], (int)pp->k, 0.f, f->gb[l], (int)(2 * B));
        }
        for (int p = 0; p < np; p++) {
            double s = 0;
            for (int l = 0; l < f->L; l++) s += detect_of(m, l, f->gb[l] + c0 + p, 2 * (size_t)B);
            r->detect[b0 + (size_t)p] = s / f->L;
        }
        tkeys += ip_now_s() - tk;
        fg_table t = {2 * (size_t)B, (size_t)B, base};
        eval_block(f, &t, s0, np, total, screen, threshold, r->correct + b0, r->evaluated + b0,
                   r->pred ? r->pred + b0 * f->E : NULL, &r->samples);
        s0 = s1;
    }
    r->seconds = ip_now_s() - t0;
    r->key_seconds = tkeys;
    return 0;
}

double ip_forge_detect_keys(ip_model *m, const float *keys, const int8_t *const *bits) {
    double s = 0;
    for (int l = 0; l < m->npassports; l++) {
        const ip_passport *p = &m->passports[l];
        ip_conv_shape cs = m->ops[p->conv_op].conv;
        cs.n = 1;
        float *cm = malloc(p->k * sizeof *cm), *g = malloc((size_t)p->cout * sizeof *g);
        if (!cm || !g) {
            free(cm), free(g);
            return NAN;
        }
        ip_conv_colmean(cm, keys + ip_keys_offset(m, l), &cs);
        cblas_sgemv(CblasRowMajor, CblasNoTrans, p->cout, (int)p->k, 1.f, param(m, m->ops[p->conv_op].weight),
                    (int)p->k, cm, 1, 0.f, g, 1);
        const int8_t *b = bits && bits[l] ? bits[l] : p->bits;
        int ok = 0;
        for (int c = 0; c < p->cout; c++) ok += (g[c] > 0 && b[c] > 0) || (g[c] < 0 && b[c] < 0);
        s += (double)ok / p->cout;
        free(cm), free(g);
    }
    return m->npassports ? s / m->npassports : 0;
}

ip_forge_mode ip_forge_set_mode(ip_forge *f, ip_forge_mode mode) {
    ip_forge_mode before = f->cfg.mode;
    f->cfg.mode = mode;
    return before;
}
