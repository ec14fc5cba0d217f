/* Model graph: building the layer list of each architecture and the
 * forward/backward passes (the memory plan for a batch size: plan.c; which
 * ops fuse and who reads what: graph.c). The arithmetic lives in the layer
 * kernels (layers.h); this file only wires them. */
#include "model.h"

#include "graph.h"

#include <cblas.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../util/checked.h"
#include "../util/rng.h"
#include "../passport/signature.h"

/* ------------------------------------------------------------------------- */
/* Registry helpers used while building                                      */

typedef struct builder {
    ip_model *m;
    ip_err *e;
    int failed;
    /* block names the config asked to be passport layers */
    char wanted[IP_MAX_PASSPORTS][IP_NAME_LEN];
    int nwanted, wanted_used[IP_MAX_PASSPORTS];
    int use_default;
} builder;

static int add_tensor(builder *b, const char *name, ip_tensor_kind kind, int ndim, const int *shape) {
    ip_model *m = b->m;
    if (m->ntensors >= IP_MAX_TENSORS) {
        b->failed = 1;
        ip_fail(b->e, "model has more than %d tensors", IP_MAX_TENSORS);
        return 0;
    }
    ip_tensor *t = &m->tensors[m->ntensors];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->kind = kind;
    t->ndim = ndim;
    t->numel = 1;
    t->fallback = -1;
    size_t *total = kind == IP_TENSOR_PARAM ? &m->nparams : &m->nbufs;
    int bad = 0;
    for (int i = 0; i < ndim; i++) {
        t->shape[i] = shape[i];
        bad |= shape[i] < 0 || ip_mul_size(t->numel, (size_t)shape[i], &t->numel) != 0;
    }
    /* shapes follow from a checkpoint's stored input shape and classes */
    if (bad || t->numel > SIZE_MAX / sizeof(float) || ip_add_size(*total, t->numel, total) != 0 ||
        *total > SIZE_MAX / sizeof(float)) {
        b->failed = 1;
        ip_fail_input(b->e, "tensor %s is too large for this machine", name);
        return 0;
    }
    t->offset = *total - t->numel;
    t->trainable = kind == IP_TENSOR_PARAM;
    return m->ntensors++;
}

static int add_act(builder *b, int c, int h, int w, int rowmajor) {
    ip_model *m = b->m;
    if (m->nacts >= IP_MAX_ACTS) {
        b->failed = 1;
        ip_fail(b->e, "model has more than %d activations", IP_MAX_ACTS);
        return 0;
    }
    ip_act *a = &m->acts[m->nacts];
    a->c = c, a->h = h, a->w = w, a->rowmajor = rowmajor, a->off = 0;
    return m->nacts++;
}

static ip_op *add_op(builder *b, ip_op_kind kind, const char *name, int in) {
    ip_model *m = b->m;
    if (m->nops >= IP_MAX_OPS) {
        b->failed = 1;
        ip_fail(b->e, "model has more than %d ops", IP_MAX_OPS);
        return NULL;
    }
    ip_op *op = &m->ops[m->nops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    snprintf(op->name, sizeof op->name, "%s", name);
    op->in = in;
    op->in2 = op->weight = op->bias = op->running_mean = op->running_var = op->passport = op->conv_op = -1;
    op->private_mean = op->private_var = -1;
    return op;
}

static int is_passport_block(builder *b, const char *block, int default_passport) {
    if (b->m->cfg.scheme == IP_SCHEME_BASELINE) return 0;
    if (b->use_default) return default_passport;
    for (int i = 0; i < b->nwanted; i++)
        if (strcmp(b->wanted[i], block) == 0) return b->wanted_used[i] = 1, 1;
    return 0;
}

/* conv (no bias) -> norm (no affine) -> affine (learned or passport) [-> ReLU].
 * Returns the output activation id. */
static int conv_block(builder *b, const char *block, int in, int cout, int k, int stride, int pad, int relu,
                      int default_passport) {
    if (b->failed) return 0;
    ip_model *m = b->m;
    ip_act a = m->acts[in];
    char name[IP_NAME_LEN], tname[IP_NAME_LEN + 16];
    ip_conv_shape cs;
    if (ip_conv_shape_init(&cs, 1, a.c, a.h, a.w, cout, k, k, stride, pad) != 0) {
        b->failed = 1;
        ip_fail_input(b->e, "%s: input %dx%d is too small for a %dx%d conv with stride %d", block, a.h, a.w, k, k,
                      stride);
        return 0;
    }
    cs.algo = m->cfg.conv;
    /* conv */
    snprintf(name, sizeof name, "%s.conv", block);
    ip_op *conv = add_op(b, IP_OP_CONV, name, in);
    if (!conv) return 0;
    int conv_id = m->nops - 1;
    conv->conv = cs;
    conv->c = cout, conv->h = cs.oh, conv->w = cs.ow;
    snprintf(tname, sizeof tname, "%s.weight", name);
    conv->weight = add_tensor(b, tname, IP_TENSOR_PARAM, 4, (int[]){cout, a.c, k, k});
    conv->out = add_act(b, cout, cs.oh, cs.ow, 0);
    /* norm */
    snprintf(name, sizeof name, "%s.norm", block);
    ip_op *norm = add_op(b, IP_OP_NORM, name, conv->out);
    if (!norm) return 0;
    norm->c = cout, norm->h = cs.oh, norm->w = cs.ow;
    norm->norm.c = cout;
    norm->norm.hw = cs.oh * cs.ow;
    /* group norm: C/16 groups (REFERENCE.md); one group when C is not a multiple of 16 */
    norm->norm.groups = m->cfg.norm == IP_NORM_GN ? (cout % 16 == 0 ? cout / 16 : 1) : 0;
    if (m->cfg.norm == IP_NORM_BN) {
        snprintf(tname, sizeof tname, "%s.running_mean", name);
        norm->running_mean = add_tensor(b, tname, IP_TENSOR_BUFFER, 1, &cout);
        snprintf(tname, sizeof tname, "%s.running_var", name);
        norm->running_var = add_tensor(b, tname, IP_TENSOR_BUFFER, 1, &cout);
    }
    norm->out = add_act(b, cout, cs.oh, cs.ow, 0);
    int norm_out = norm->out;
    /* affine: the learned gamma/beta exist for every block (the public branch
     * of v2/v3, the converted affine of a fine-tuned v1 model) */
    ip_op *aff = add_op(b, IP_OP_AFFINE, name, norm_out);
    if (!aff) return 0;
    aff->c = cout, aff->h = cs.oh, aff->w = cs.ow;
    aff->relu = relu;
    snprintf(tname, sizeof tname, "%s.weight", name);
    aff->weight = add_tensor(b, tname, IP_TENSOR_PARAM, 1, &cout);
    snprintf(tname, sizeof tname, "%s.bias", name);
    aff->bias = add_tensor(b, tname, IP_TENSOR_PARAM, 1, &cout);
    aff->out = add_act(b, cout, cs.oh, cs.ow, 0);
    if (is_passport_block(b, block, default_passport)) {
        if (m->npassports >= IP_MAX_PASSPORTS) {
            b->failed = 1;
            ip_fail(b->e, "more than %d passport layers", IP_MAX_PASSPORTS);
            return 0;
        }
        ip_passport *p = &m->passports[m->npassports];
        memset(p, 0, sizeof *p);
        snprintf(p->layer, sizeof p->layer, "%s", block);
        p->conv_op = conv_id;
        p->affine_op = m->nops - 1;
        p->cout = cout;
        p->k = ip_conv_k(&cs);
        int kshape[4] = {1, a.c, a.h, a.w};
        snprintf(tname, sizeof tname, "%s.gamma_key", block);
        p->key_gamma = add_tensor(b, tname, IP_TENSOR_PASSPORT, 4, kshape);
        snprintf(tname, sizeof tname, "%s.beta_key", block);
        p->key_beta = add_tensor(b, tname, IP_TENSOR_PASSPORT, 4, kshape);
        aff->passport = m->npassports;
        aff->conv_op = conv_id;
        /* v1 never uses the learned affine of a passport layer: keep it out of the optimiser */
        if (m->cfg.scheme == IP_SCHEME_V1) {
            m->tensors[aff->weight].trainable = 0;
            m->tensors[aff->bias].trainable = 0;
        }
        m->npassports++;
    }
    return aff->out;
}

static int pool(builder *b, const char *name, int in) {
    if (b->failed) return 0;
    ip_act a = b->m->acts[in];
    if (a.h < 2 || a.w < 2) {
        b->failed = 1;
        ip_fail_input(b->e, "%s: input %dx%d is too small for 2x2 max-pooling", name, a.h, a.w);
        return 0;
    }
    ip_op *op = add_op(b, IP_OP_POOL, name, in);
    if (!op) return 0;
    op->c = a.c, op->h = a.h / 2, op->w = a.w / 2;
    op->out = add_act(b, a.c, a.h / 2, a.w / 2, 0);
    return op->out;
}

static void classifier(builder *b, int in, int global_pool) {
    if (b->failed) return;
    ip_model *m = b->m;
    ip_act a = m->acts[in];
    ip_op *f = add_op(b, global_pool ? IP_OP_GAP : IP_OP_FLATTEN, global_pool ? "gap" : "flatten", in);
    if (!f) return;
    size_t feat_size;
    if (ip_mul3_size((size_t)a.c, (size_t)a.h, (size_t)a.w, &feat_size) != 0 || feat_size > INT_MAX) {
        b->failed = 1;
        ip_fail_input(b->e, "classifier input %dx%dx%d is too large", a.c, a.h, a.w);
        return;
    }
    int feat = global_pool ? a.c : (int)feat_size;
    f->c = feat, f->h = f->w = 1;
    f->out = add_act(b, feat, 1, 1, 1);
    int flat = f->out;
    ip_op *fc = add_op(b, IP_OP_LINEAR, "fc", flat);
    if (!fc) return;
    fc->in_features = feat;
    fc->c = m->cfg.classes, fc->h = fc->w = 1;
    fc->weight = add_tensor(b, "fc.weight", IP_TENSOR_PARAM, 2, (int[]){m->cfg.classes, feat});
    fc->bias = add_tensor(b, "fc.bias", IP_TENSOR_PARAM, 1, &m->cfg.classes);
    fc->out = add_act(b, m->cfg.classes, 1, 1, 1);
}

/* small-p and its width variants: three 3x3 conv blocks, each followed by a 2x2 pool. */
static void build_small(builder *b, int width) {
    int x = 0;
    x = conv_block(b, "block0", x, width, 3, 1, 1, 1, 0);
    x = pool(b, "pool0", x);
    x = conv_block(b, "block1", x, 2 * width, 3, 1, 1, 1, 1);
    x = pool(b, "pool1", x);
    x = conv_block(b, "block2", x, 4 * width, 3, 1, 1, 1, 1);
    x = pool(b, "pool2", x);
    classifier(b, x, 0);
}

static void build_alexnet(builder *b) {
    int x = 0;
    x = conv_block(b, "block0", x, 64, 5, 1, 2, 1, 0);
    x = pool(b, "pool0", x);
    x = conv_block(b, "block1", x, 192, 5, 1, 2, 1, 0);
    x = pool(b, "pool1", x);
    x = conv_block(b, "block2", x, 384, 3, 1, 1, 1, 1);
    x = conv_block(b, "block3", x, 256, 3, 1, 1, 1, 1);
    x = conv_block(b, "block4", x, 256, 3, 1, 1, 1, 1);
    x = pool(b, "pool4", x);
    classifier(b, x, 0);
}

static void build_resnet18(builder *b) {
    static const int widths[4] = {64, 128, 256, 512};
    int x = conv_block(b, "stem", 0, 64, 3, 1, 1, 1, 0);
    for (int s = 0; s < 4; s++) {
        for (int blk = 0; blk < 2; blk++) {
            if (b->failed) return;
            int stride = (s > 0 && blk == 0) ? 2 : 1;
            int cin = b->m->acts[x].c, cout = widths[s];
            int last_stage = s == 3; /* passport layers by default: every conv of the last stage */
            char n1[IP_NAME_LEN], n2[IP_NAME_LEN], nsc[IP_NAME_LEN], nadd[IP_NAME_LEN];
            snprintf(n1, sizeof n1, "s%d.b%d.c1", s + 1, blk);
            snprintf(n2, sizeof n2, "s%d.b%d.c2", s + 1, blk);
            snprintf(nsc, sizeof nsc, "s%d.b%d.sc", s + 1, blk);
            snprintf(nadd, sizeof nadd, "s%d.b%d.add", s + 1, blk);
            /* the authors' blocks have ReLU on by default, also after the second conv+norm and the
             * shortcut's, before the addition (docs/models.md) */
            int code_relu = b->m->cfg.protocol == IP_PROTOCOL_DEEPIPR_CODE;
            int y = conv_block(b, n1, x, cout, 3, stride, 1, 1, last_stage);
            y = conv_block(b, n2, y, cout, 3, 1, 1, code_relu, last_stage);
            int sc = x;
            if (stride != 1 || cin != cout) sc = conv_block(b, nsc, x, cout, 1, stride, 0, code_relu, last_stage);
            if (b->failed) return;
            ip_act ya = b->m->acts[y];
            ip_op *add = add_op(b, IP_OP_ADD, nadd, y);
            if (!add) return;
            add->in2 = sc;
            add->relu = 1;
            add->c = ya.c, add->h = ya.h, add->w = ya.w;
            add->out = add_act(b, ya.c, ya.h, ya.w, 0);
            x = add->out;
        }
    }
    classifier(b, x, 1);
}

/* v2/v3 with batch norm: a norm whose input depends on a passport layer sees
 * different activations in the two branches, so each branch keeps its own
 * running statistics (the public branch the ordinary ones); a running mean
 * over both would fit neither in eval mode (docs/passports.md). Added after
 * every other tensor so the init streams of the others do not move. */
static void add_private_stats(builder *b) {
    ip_model *m = b->m;
    if (b->failed || m->cfg.norm != IP_NORM_BN ||
        (m->cfg.scheme != IP_SCHEME_V2 && m->cfg.scheme != IP_SCHEME_V3))
        return;
    int dep[IP_MAX_ACTS] = {0}; /* activation depends on a passport layer's gamma/beta */
    for (int i = 0; i < m->nops && !b->failed; i++) {
        ip_op *op = &m->ops[i];
        int d = dep[op->in] || (op->in2 >= 0 && dep[op->in2]) || (op->kind == IP_OP_AFFINE && op->passport >= 0);
        dep[op->out] = d;
        if (!d || op->kind != IP_OP_NORM || op->running_mean < 0) continue;
        char tname[IP_NAME_LEN + 24];
        snprintf(tname, sizeof tname, "%s.private_running_mean", op->name);
        op->private_mean = add_tensor(b, tname, IP_TENSOR_BUFFER, 1, &op->c);
        snprintf(tname, sizeof tname, "%s.private_running_var", op->name);
        op->private_var = add_tensor(b, tname, IP_TENSOR_BUFFER, 1, &op->c);
        if (b->failed) return;
        /* checkpoints written before the split hold only the shared statistics */
        m->tensors[op->private_mean].fallback = op->running_mean;
        m->tensors[op->private_var].fallback = op->running_var;
    }
}

static int parse_passport_list(builder *b, const char *list) {
    b->use_default = list[0] == 0 || strcmp(list, "default") == 0;
    b->nwanted = 0;
    if (b->use_default || strcmp(list, "none") == 0) return 0;
    const char *p = list;
    while (*p) {
        size_t len = strcspn(p, ",");
        if (len == 0 || len >= IP_NAME_LEN) return ip_fail_input(b->e, "bad passport layer list \"%s\"", list);
        if (b->nwanted >= IP_MAX_PASSPORTS)
            return ip_fail_input(b->e, "too many passport layers in \"%s\"", list);
        memcpy(b->wanted[b->nwanted], p, len);
        b->wanted[b->nwanted][len] = 0;
        b->wanted_used[b->nwanted] = 0;
        b->nwanted++;
        p += len;
        if (*p == ',') p++;
    }
    return 0;
}

static size_t passport_scratch_floats(const ip_model *m) {
    size_t n = 0;
    for (int i = 0; i < m->npassports; i++) n += 2 * m->passports[i].k + 4 * (size_t)m->passports[i].cout;
    return n;
}

int ip_model_cfg_check_shape(const ip_model_cfg *cfg, ip_err *e) {
    /* the limits of data.h: every per-sample size of every arch then fits in int */
    if (cfg->in_c < 1 || cfg->in_c > IP_DATA_MAX_CHANNELS || cfg->in_h < 1 || cfg->in_w < 1 ||
        cfg->in_h > IP_DATA_MAX_SIDE || cfg->in_w > IP_DATA_MAX_SIDE)
        return ip_fail_input(e, "bad input shape (%d,%d,%d): channels must be 1..%d, height and width 1..%d",
                             cfg->in_c, cfg->in_h, cfg->in_w, IP_DATA_MAX_CHANNELS, IP_DATA_MAX_SIDE);
    if (cfg->classes < 2 || cfg->classes > IP_DATA_MAX_CLASSES)
        return ip_fail_input(e, "bad classes %d: a classifier needs 2..%d", cfg->classes, IP_DATA_MAX_CLASSES);
    return 0;
}

int ip_model_layout(ip_model *m, const ip_model_cfg *cfg, ip_err *e) {
    memset(m, 0, sizeof *m);
    m->cfg = *cfg;
    m->bn_momentum = 0.1f;
    m->bn_eps = 1e-5f;
    m->branch = IP_BRANCH_PRIVATE;
    if (ip_model_cfg_check_shape(cfg, e) != 0) return -1;
    if ((unsigned)cfg->norm > IP_NORM_GN) return ip_fail_input(e, "bad norm kind %d", (int)cfg->norm);
    if ((unsigned)cfg->scheme > IP_SCHEME_V3) return ip_fail_input(e, "bad scheme %d", (int)cfg->scheme);
    if ((unsigned)cfg->protocol > IP_PROTOCOL_DEEPIPR_CODE) return ip_fail_input(e, "bad protocol %d", cfg->protocol);
    if ((unsigned)cfg->conv > IP_CONV_REFERENCE) return ip_fail_input(e, "bad conv algorithm %d", cfg->conv);
    for (int c = 0; c < cfg->in_c; c++)
        if (!(m->cfg.in_std[c] > 0)) m->cfg.in_mean[c] = 0, m->cfg.in_std[c] = 1;

    builder b = {.m = m, .e = e};
    if (parse_passport_list(&b, cfg->passport_layers) != 0) return -1;
    add_act(&b, cfg->in_c, cfg->in_h, cfg->in_w, 0); /* act 0: the input */
    if (strcmp(cfg->arch, "small-p") == 0) build_small(&b, 32);
    else if (strcmp(cfg->arch, "small-p-narrow") == 0) build_small(&b, 16);
    else if (strcmp(cfg->arch, "small-p-wide") == 0) build_small(&b, 64);
    else if (strcmp(cfg->arch, "alexnet-p") == 0) build_alexnet(&b);
    else if (strcmp(cfg->arch, "resnet18-p") == 0) build_resnet18(&b);
    else {
        char known[160] = "";
        for (int i = 0; ip_arch_names[i]; i++) {
            strcat(known, i ? ", " : "");
            strcat(known, ip_arch_names[i]);
        }
        return ip_fail_input(e, "unknown architecture \"%s\" (known: %s)", cfg->arch, known);
    }
    add_private_stats(&b);
    if (b.failed) return -1;
    for (int i = 0; i < b.nwanted; i++)
        if (!b.wanted_used[i])
            return ip_fail_input(e, "passport layer \"%s\" is not a conv block of %s", b.wanted[i], cfg->arch);
    if (cfg->scheme != IP_SCHEME_BASELINE && m->npassports == 0)
        return ip_fail_input(e, "scheme %s needs at least one passport layer", ip_scheme_name(cfg->scheme));
    return 0;
}

int ip_model_build(ip_model *m, const ip_model_cfg *cfg, ip_err *e) {
    if (ip_model_layout(m, cfg, e) != 0) return -1;
    m->params = calloc(m->nparams, sizeof(float));
    m->grads = calloc(m->nparams, sizeof(float));
    m->bufs = calloc(m->nbufs ? m->nbufs : 1, sizeof(float));
    size_t ps = passport_scratch_floats(m);
    m->passport_scratch = calloc(ps ? ps : 1, sizeof(float));
    size_t nbits = 0;
    for (int i = 0; i < m->npassports; i++) nbits += (size_t)m->passports[i].cout;
    m->bits_store = calloc(nbits ? nbits : 1, 1);
    if (!m->params || !m->grads || !m->bufs || !m->passport_scratch || !m->bits_store) {
        ip_model_free(m);
        return ip_fail(e, "out of memory allocating %zu parameters", m->nparams);
    }
    float *s = m->passport_scratch;
    int8_t *bits = m->bits_store;
    for (int i = 0; i < m->npassports; i++) {
        ip_passport *p = &m->passports[i];
        p->colmean_gamma = s, s += p->k;
        p->colmean_beta = s, s += p->k;
        p->gamma = s, s += p->cout;
        p->beta = s, s += p->cout;
        p->dgamma = s, s += p->cout;
        p->dbeta = s, s += p->cout;
        p->bits = bits, bits += p->cout;
    }
    return 0;
}

void ip_model_free(ip_model *m) {
    ip_data_free(&m->trigger);
    free(m->params);
    free(m->grads);
    free(m->bufs);
    free(m->passport_scratch);
    free(m->bits_store);
    free(m->arena);
    free(m->darena);
    free(m->index_arena);
    free(m->work);
    free(m->dlogits);
    m->params = m->grads = m->bufs = m->passport_scratch = NULL;
    m->arena = m->darena = m->work = m->dlogits = NULL;
    m->bits_store = NULL;
    m->index_arena = NULL;
    m->batch = 0;
}

int ip_model_find_tensor(const ip_model *m, const char *name) {
    for (int i = 0; i < m->ntensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return i;
    return -1;
}

static float *tensor_data(ip_model *m, int t) {
    const ip_tensor *tt = &m->tensors[t];
    return (tt->kind == IP_TENSOR_PARAM ? m->params : m->bufs) + tt->offset;
}

/* ------------------------------------------------------------------------- */
/* Initialisation                                                            */

int ip_model_init(ip_model *m, uint64_t seed, const char *signature, ip_err *e) {
    for (int ti = 0; ti < m->ntensors; ti++) {
        ip_tensor *t = &m->tensors[ti];
        float *d = tensor_data(m, ti);
        ip_rng r;
        ip_rng_init(&r, seed, ip_stream("init", (uint64_t)ti));
        const char *field = strrchr(t->name, '.');
        field = field ? field + 1 : t->name;
        if (t->kind == IP_TENSOR_PASSPORT) {
            for (size_t i = 0; i < t->numel; i++) d[i] = ip_rng_range(&r, -1.f, 1.f);
        } else if (strstr(field, "running_var")) { /* running_var, private_running_var */
            for (size_t i = 0; i < t->numel; i++) d[i] = 1.f;
        } else if (strstr(field, "running_mean")) {
            memset(d, 0, t->numel * sizeof *d);
        } else if (t->ndim == 1 && strstr(t->name, ".norm.")) {
            float v = strcmp(field, "weight") == 0 ? 1.f : 0.f;
            for (size_t i = 0; i < t->numel; i++) d[i] = v;
        } else if (t->ndim == 4 && m->cfg.protocol == IP_PROTOCOL_DEEPIPR_CODE) {
            /* the authors' ConvBlock and PassportBlock: kaiming_normal_(mode='fan_out',
             * nonlinearity='relu') = N(0, 2 / (Cout*kh*kw)) */
            float sd = sqrtf(2.f / (float)(t->numel / (size_t)t->shape[1]));
            for (size_t i = 0; i < t->numel; i++) d[i] = sd * ip_rng_normal(&r);
        } else {
            /* PyTorch default: kaiming_uniform(a=sqrt(5)) = U(+-1/sqrt(fan_in)) for
             * conv/linear weights; linear bias U(+-1/sqrt(fan_in)) too. */
            size_t fan_in = 1;
            if (t->ndim >= 2)
                for (int k = 1; k < t->ndim; k++) fan_in *= (size_t)t->shape[k];
            else /* a linear bias: fan_in of its weight */
                fan_in = (size_t)m->tensors[ti - 1].shape[1];
            float bound = 1.f / sqrtf((float)fan_in);
            for (size_t i = 0; i < t->numel; i++) d[i] = ip_rng_range(&r, -bound, bound);
        }
    }
    for (int p = 0; p < m->npassports; p++)
        if (ip_model_set_signature(m, p, signature, seed, e) != 0) return -1;
    ip_model_passports_changed(m);
    return 0;
}

int ip_model_set_signature(ip_model *m, int p, const char *text, uint64_t seed, ip_err *e) {
    ip_passport *pp = &m->passports[p];
    if (text && strlen(text) >= sizeof pp->signature)
        return ip_fail(e, "signature longer than %zu characters", sizeof pp->signature - 1);
    if (ip_signature_bits(pp->bits, pp->cout, text, seed, ip_stream("signature", (uint64_t)p), e) != 0)
        return ip_failctx(e, "passport layer %s", pp->layer);
    snprintf(pp->signature, sizeof pp->signature, "%s", text ? text : "");
    return 0;
}

void ip_model_passports_changed(ip_model *m) {
    for (int i = 0; i < m->npassports; i++) {
        ip_passport *p = &m->passports[i];
        ip_conv_shape cs = m->ops[p->conv_op].conv;
        cs.n = 1;
        ip_conv_colmean(p->colmean_gamma, tensor_data(m, p->key_gamma), &cs);
        ip_conv_colmean(p->colmean_beta, tensor_data(m, p->key_beta), &cs);
    }
}

/* Planning (ip_model_set_conv, ip_model_plan): core/model/plan.c */

/* ------------------------------------------------------------------------- */
/* Forward / backward                                                        */

/* Whether affine op `op` applies passport-derived gamma/beta on branch br. */
static int uses_passport_on(const ip_model *m, const ip_op *op, ip_branch br) {
    return op->passport >= 0 && (m->cfg.scheme == IP_SCHEME_V1 || br == IP_BRANCH_PRIVATE);
}

static int uses_passport(const ip_model *m, const ip_op *op) { return uses_passport_on(m, op, m->branch); }

void ip_model_norm_running(ip_model *m, const ip_op *op, ip_branch br, float **mean, float **var) {
    int priv = br == IP_BRANCH_PRIVATE && op->private_mean >= 0;
    int im = priv ? op->private_mean : op->running_mean, iv = priv ? op->private_var : op->running_var;
    *mean = im >= 0 ? m->bufs + m->tensors[im].offset : NULL;
    *var = iv >= 0 ? m->bufs + m->tensors[iv].offset : NULL;
}

/* gamma = W . colmean(P_gamma), beta = W . colmean(P_beta): a GEMV each (see layers.h). */
static void passport_affine(ip_model *m, ip_passport *p) {
    const float *w = m->params + m->tensors[m->ops[p->conv_op].weight].offset;
    cblas_sgemv(CblasRowMajor, CblasNoTrans, p->cout, (int)p->k, 1.f, w, (int)p->k, p->colmean_gamma, 1, 0.f,
                p->gamma, 1);
    cblas_sgemv(CblasRowMajor, CblasNoTrans, p->cout, (int)p->k, 1.f, w, (int)p->k, p->colmean_beta, 1, 0.f,
                p->beta, 1);
}

void ip_model_passport_affine(ip_model *m) {
    for (int i = 0; i < m->npassports; i++) passport_affine(m, &m->passports[i]);
}

static double op_clock(const ip_model *m) {
    if (!m->op_seconds) return 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static float *act_ptr(ip_model *m, int a) { return m->arena + m->acts[a].off; }
static float *dact_ptr(ip_model *m, int a) { return m->darena + m->acts[a].doff; }
static size_t act_len(const ip_model *m, int a, int n) {
    const ip_act *x = &m->acts[a];
    return (size_t)x->c * x->h * x->w * (size_t)n;
}

/* gamma/beta an affine op applies: the passport-derived ones (recomputed when
 * `compute`, else those of the last forward) or the learned ones. */
static void affine_params_on(ip_model *m, const ip_op *op, ip_branch br, int compute, const float **g,
                             const float **b) {
    if (uses_passport_on(m, op, br)) {
        ip_passport *p = &m->passports[op->passport];
        if (compute) passport_affine(m, p);
        *g = p->gamma, *b = p->beta;
    } else {
        *g = m->params + m->tensors[op->weight].offset;
        *b = m->params + m->tensors[op->bias].offset;
    }
}

static void affine_params(ip_model *m, const ip_op *op, int compute, const float **g, const float **b) {
    affine_params_on(m, op, m->branch, compute, g, b);
}

void ip_op_forward(ip_model *m, const ip_op *op, const ip_op_io *io) {
    float *out = io->out;
    const float *src = io->in;
    int n = io->n;
    switch (op->kind) {
    case IP_OP_CONV: {
        ip_conv_shape cs = op->conv;
        cs.n = n;
        const float *w = m->params + m->tensors[op->weight].offset;
        if (io->direct_conv && conv2d_direct_applicable(&cs)) conv2d_direct_forward(out, src, w, &cs);
        else conv2d_forward(out, src, w, io->work, &cs);
        break;
    }
    case IP_OP_NORM: {
        ip_norm_shape ns = op->norm;
        ns.n = n;
        float *rm, *rv;
        ip_model_norm_running(m, op, io->branch, &rm, &rv);
        norm_forward(out, io->mean, io->rstd, src, &ns, io->training, rm, rv, m->bn_momentum, m->bn_eps);
        break;
    }
    case IP_OP_AFFINE: {
        const float *g, *bta;
        affine_params_on(m, op, io->branch, 1, &g, &bta);
        affine_forward(out, src, g, bta, op->c, (size_t)n * op->h * op->w, op->relu);
        break;
    }
    case IP_OP_ADD: {
        size_t hw = (size_t)op->h * op->w;
        if (io->n2 == n) {
            add_forward(out, src, io->in2, (size_t)op->c * n * hw, op->relu);
            break;
        }
        /* broadcast: larger (C, G*S, H, W) + smaller (C, S, H, W) -> out (C, G*S, H, W), the smaller
         * operand's channel-c segment added to each of the G segments of channel c */
        int big = n > io->n2 ? n : io->n2, small = n > io->n2 ? io->n2 : n;
        const float *lg = n > io->n2 ? src : io->in2, *sm = n > io->n2 ? io->in2 : src;
        size_t seg = (size_t)small * hw;
        for (int c = 0; c < op->c; c++)
            for (int g = 0; g < big / small; g++)
                add_forward(out + (size_t)c * big * hw + g * seg, lg + (size_t)c * big * hw + g * seg,
                            sm + (size_t)c * seg, seg, op->relu);
        break;
    }
    case IP_OP_POOL: {
        const ip_act *ia = &m->acts[op->in];
        maxpool2_forward(out, io->argmax, src, (size_t)ia->c * n, ia->h, ia->w);
        break;
    }
    case IP_OP_GAP: {
        const ip_act *ia = &m->acts[op->in];
        gap_forward(out, src, ia->c, n, ia->h * ia->w);
        break;
    }
    case IP_OP_FLATTEN: {
        const ip_act *ia = &m->acts[op->in];
        flatten_forward(out, src, ia->c, n, ia->h * ia->w);
        break;
    }
    case IP_OP_LINEAR:
        linear_forward(out, src, m->params + m->tensors[op->weight].offset, m->params + m->tensors[op->bias].offset,
                       n, op->in_features, op->c);
        break;
    }
}

/* Where an affine op's backward accumulates dgamma/dbeta: the passport scratch
 * (zeroed here; affine_grads_done moves it into the conv weight's gradient) or
 * the learned parameters' gradients. */
static void affine_grads(ip_model *m, const ip_op *op, float **dg, float **db) {
    if (uses_passport(m, op)) {
        ip_passport *p = &m->passports[op->passport];
        memset(p->dgamma, 0, p->cout * sizeof(float));
        memset(p->dbeta, 0, p->cout * sizeof(float));
        *dg = p->dgamma, *db = p->dbeta;
    } else {
        *dg = m->grads + m->tensors[op->weight].offset;
        *db = m->grads + m->tensors[op->bias].offset;
    }
}

static void affine_grads_done(ip_model *m, const ip_op *op, int private_ran) {
    if (!uses_passport(m, op)) return;
    ip_passport *p = &m->passports[op->passport];
    if (private_ran && m->sign_loss_scale > 0)
        ip_sign_loss(p->dgamma, p->gamma, p->bits, p->cout, IP_SIGN_ALPHA, IP_SIGN_GAMMA0, IP_SIGN_L2,
                     m->sign_loss_scale);
    /* passport path: dW += dgamma (x) colmean_gamma + dbeta (x) colmean_beta */
    float *dw = m->grads + m->tensors[m->ops[p->conv_op].weight].offset;
    cblas_sger(CblasRowMajor, p->cout, (int)p->k, 1.f, p->dgamma, 1, p->colmean_gamma, 1, dw, (int)p->k);
    cblas_sger(CblasRowMajor, p->cout, (int)p->k, 1.f, p->dbeta, 1, p->colmean_beta, 1, dw, (int)p->k);
}

/* ---- fused conv-block tails (which ops: graph.h) ----
 * One pass over the data each way instead of three to five, no zeroing of
 * the intermediate gradients, and the norm's own output (xhat) is never
 * materialised (plan.c gives it no storage). */

/* infer: no backward follows, so the pool's argmax is not kept. */
static void tail_forward(ip_model *m, int head, int len, int n, int training, int infer) {
    ip_op *op = &m->ops[head], *aff = op + 1, *pool = len == 3 ? op + 2 : NULL;
    float *mean = m->arena + op->stats_off, *rstd = mean + ip_norm_stats(&op->norm);
    float *rm, *rv;
    ip_model_norm_running(m, op, m->branch, &rm, &rv);
    const float *g, *b;
    affine_params(m, aff, 1, &g, &b);
    ip_norm_tail_shape ts = ip_graph_tail_shape(m, head, len, n);
    /* with a pool, nothing reads the affine's output (plan.c gives it no storage) */
    uint32_t *argmax = pool && !infer ? m->index_arena + pool->argmax_off : NULL;
    norm_tail_forward(pool ? NULL : act_ptr(m, aff->out), pool ? act_ptr(m, pool->out) : NULL, argmax, mean, rstd,
                      act_ptr(m, op->in), g, b, &ts, training, rm, rv, m->bn_momentum, m->bn_eps);
}

static void tail_backward(ip_model *m, int head, int len, int n, int params, int private_ran) {
    ip_op *op = &m->ops[head], *aff = op + 1, *last = &m->ops[head + len - 1];
    const float *mean = m->arena + op->stats_off, *rstd = mean + ip_norm_stats(&op->norm);
    const float *g, *b;
    float *dg = NULL, *db = NULL;
    affine_params(m, aff, 0, &g, &b);
    if (params) affine_grads(m, aff, &dg, &db);
    ip_norm_tail_shape ts = ip_graph_tail_shape(m, head, len, n);
    /* the first op (in backward order) to reach the input's gradient writes it instead of accumulating */
    int acc = ip_graph_last_reader(m, op->in) != head;
    /* group norm's sums go to the conv workspace, which plan.c sizes for them (no conv runs meanwhile) */
    norm_tail_backward(dact_ptr(m, op->in), acc, dg, db, dact_ptr(m, last->out),
                       len == 3 ? m->index_arena + last->argmax_off : NULL, act_ptr(m, op->in), mean, rstd, g, b,
                       &ts, m->cur_training, (double *)m->work);
    if (params) affine_grads_done(m, aff, private_ran);
}

/* In an inference pass, conv op i and the fused tail that alone reads its
 * output, as one kernel when the conv runs as Winograd (conv2d_forward_tail:
 * the tail's values to the bit, the conv's output never written). Returns the
 * ops it ran (1 + the tail's), 0 when it ran nothing. */
static int conv_tail_forward(ip_model *m, int i, int n) {
    const ip_op *conv = &m->ops[i];
    int len = i + 1 < m->nops ? ip_graph_tail_len(m, i + 1) : 0;
    if (conv->kind != IP_OP_CONV || !len || conv[1].in != conv->out || ip_graph_readers(m, conv->out) != 1) return 0;
    if (conv[1].norm.groups > 0) return 0; /* group norm's statistics need the whole output first */
    const ip_op *norm = conv + 1, *aff = conv + 2, *pool = len == 3 ? conv + 3 : NULL;
    ip_conv_shape cs = conv->conv;
    cs.n = n;
    float *rm, *rv;
    ip_model_norm_running(m, norm, m->branch, &rm, &rv);
    if (!rm || !rv || conv2d_direct_applicable(&cs)) return 0; /* batch statistics; forward_ops's direct kernel */
    float *mean = m->arena + norm->stats_off, *rstd = mean + ip_norm_stats(&norm->norm);
    bn_tail_eval_stats(mean, rstd, rm, rv, aff->c, m->bn_eps);
    const float *g, *b;
    affine_params(m, aff, 1, &g, &b);
    ip_conv_tail t = {.mean = mean, .rstd = rstd, .gamma = g, .beta = b, .relu = aff->relu, .pool = pool != NULL};
    float *out = act_ptr(m, (pool ? pool : aff)->out);
    const float *w = m->params + m->tensors[conv->weight].offset;
    return conv2d_forward_tail(out, act_ptr(m, conv->in), w, m->work, &cs, &t) ? 1 + len : 0;
}

/* The first `end` ops of the forward pass (a fused group that starts among
 * them runs whole); infer: an eval-mode pass no backward follows
 * (ip_model_infer), whose Winograd convs run with their tails. */
static void forward_ops(ip_model *m, const float *x, int n, int training, int end, int infer) {
    if (n > m->batch) n = m->batch; /* callers plan first; never write past the arena */
    m->cur_n = n;
    m->cur_training = training;
    m->cur_infer = infer;
    /* input (N, C, H, W) -> act 0 (C, N, H, W) */
    const ip_act *in = &m->acts[0];
    size_t hw = (size_t)in->h * in->w;
    float *a0 = act_ptr(m, 0);
    for (int c = 0; c < in->c; c++)
        for (int i = 0; i < n; i++) memcpy(a0 + ((size_t)c * n + i) * hw, x + ((size_t)i * in->c + c) * hw, hw * 4);

    for (int i = 0; i < end; i++) {
        ip_op *op = &m->ops[i];
        float *out = act_ptr(m, op->out);
        const float *src = act_ptr(m, op->in);
        double t0 = op_clock(m);
        int with_tail = infer && i + 1 < end ? conv_tail_forward(m, i, n) : 0;
        if (with_tail) {
            if (m->op_seconds) m->op_seconds[i] += op_clock(m) - t0;
            i += with_tail - 1;
            continue;
        }
        int fused = ip_graph_tail_len(m, i);
        if (fused) {
            tail_forward(m, i, fused, n, training, infer);
            if (m->op_seconds) m->op_seconds[i] += op_clock(m) - t0;
            i += fused - 1;
            continue;
        }
        ip_op_io io = {.out = out, .in = src, .n = n, .n2 = n, .training = training, .branch = m->branch,
                       .work = m->work, .direct_conv = 1};
        if (op->in2 >= 0) io.in2 = act_ptr(m, op->in2);
        if (op->kind == IP_OP_NORM) {
            /* where backward reads them: rstd after the planned batch's mean */
            io.mean = m->arena + op->stats_off;
            io.rstd = io.mean + ip_norm_stats(&op->norm);
        }
        if (op->kind == IP_OP_POOL) io.argmax = m->index_arena + op->argmax_off;
        ip_op_forward(m, op, &io);
        if (m->op_seconds) m->op_seconds[i] += op_clock(m) - t0;
    }
}

const float *ip_model_forward(ip_model *m, const float *x, int n, int training) {
    forward_ops(m, x, n, training, m->nops, 0);
    return act_ptr(m, m->ops[m->nops - 1].out);
}

const float *ip_model_infer(ip_model *m, const float *x, int n) {
    forward_ops(m, x, n, 0, m->nops, 1);
    return act_ptr(m, m->ops[m->nops - 1].out);
}

/* Ops ip_model_forward_to(act) runs: those up to act's producer. */
static int ops_to(const ip_model *m, int act) {
    int prod = ip_model_producer(m, act);
    return act == 0 ? 0 : prod < 0 ? m->nops : prod + 1; /* an activation no op produces: the whole pass */
}

void ip_model_forward_to(ip_model *m, const float *x, int n, int training, int act) {
    forward_ops(m, x, n, training, ops_to(m, act), 0);
}

static void zero_if_first(ip_model *m, int op_index, int a, int n, int want_dx) {
    if (a == 0 && !want_dx) return; /* the input's gradient is not wanted */
    if (ip_graph_last_reader(m, a) == op_index) memset(dact_ptr(m, a), 0, act_len(m, a, n) * sizeof(float));
}

/* Where the backward cannot run (no memory for the activation gradients, or
 * the last forward was ip_model_infer's): every result it would have produced
 * is NaN. */
static void backward_failed(ip_model *m, float *dx, int params) {
    if (params)
        for (size_t i = 0; i < m->nparams; i++) m->grads[i] = NAN;
    if (dx) {
        const ip_act *in = &m->acts[0];
        size_t len = (size_t)in->c * in->h * in->w * (size_t)m->cur_n;
        for (size_t i = 0; i < len; i++) dx[i] = NAN;
    }
}

/* The backward pass; params = 0 skips every parameter gradient (and the
 * sign loss, which only reaches them). The input gradient runs the same
 * kernels on the same values either way, so it is the same to the bit. */
static void backward(ip_model *m, const float *dlogits, float *dx, int params) {
    ip_err e;
    if (m->cur_infer || (!m->darena && ip_model_plan_backward(m, &e) != 0)) {
        backward_failed(m, dx, params);
        return;
    }
    int n = m->cur_n;
    int want_dx = dx != NULL;
    int private_ran = m->cfg.scheme == IP_SCHEME_V1 || m->branch == IP_BRANCH_PRIVATE;
    memcpy(dact_ptr(m, m->ops[m->nops - 1].out), dlogits, (size_t)n * m->cfg.classes * sizeof(float));
    for (int i = m->nops - 1; i >= 0; i--) {
        ip_op *op = &m->ops[i];
        double t0 = op_clock(m);
        int head = ip_graph_tail_head(m, i);
        if (head >= 0) {
            tail_backward(m, head, i - head + 1, n, params, private_ran);
            if (m->op_seconds) m->op_seconds[m->nops + head] += op_clock(m) - t0;
            i = head;
            continue;
        }
        zero_if_first(m, i, op->in, n, want_dx);
        if (op->in2 >= 0) zero_if_first(m, i, op->in2, n, want_dx);
        const float *dout = dact_ptr(m, op->out);
        float *din = (op->in == 0 && !want_dx) ? NULL : dact_ptr(m, op->in);
        const float *src = act_ptr(m, op->in);
        switch (op->kind) {
        case IP_OP_CONV: {
            ip_conv_shape cs = op->conv;
            cs.n = n;
            float *dw = params ? m->grads + m->tensors[op->weight].offset : NULL;
            if (!din && !dw) break;
            if (!din && conv2d_direct_applicable(&cs)) conv2d_direct_backward_weight(dw, dout, src, &cs);
            else conv2d_backward(din, dw, dout, src, m->params + m->tensors[op->weight].offset, m->work, &cs);
            break;
        }
        case IP_OP_NORM: {
            ip_norm_shape ns = op->norm;
            ns.n = n;
            const float *rstd = m->arena + op->stats_off + ip_norm_stats(&op->norm);
            norm_backward(din, dout, act_ptr(m, op->out), rstd, &ns, m->cur_training);
            break;
        }
        case IP_OP_AFFINE: {
            size_t len = (size_t)n * op->h * op->w;
            const float *out = act_ptr(m, op->out);
            const float *g, *bta;
            float *dg = NULL, *db = NULL;
            affine_params(m, op, 0, &g, &bta);
            if (params) affine_grads(m, op, &dg, &db);
            affine_backward(din, dg, db, dout, out, src, g, op->c, len, op->relu);
            if (params) affine_grads_done(m, op, private_ran);
            break;
        }
        case IP_OP_ADD:
            add_backward(din, dact_ptr(m, op->in2), dout, act_ptr(m, op->out), act_len(m, op->out, n), op->relu);
            break;
        case IP_OP_POOL: {
            const ip_act *ia = &m->acts[op->in];
            if (din) maxpool2_backward(din, dout, m->index_arena + op->argmax_off, (size_t)ia->c * n, ia->h, ia->w);
            break;
        }
        case IP_OP_GAP: {
            const ip_act *ia = &m->acts[op->in];
            if (din) gap_backward(din, dout, ia->c, n, ia->h * ia->w);
            break;
        }
        case IP_OP_FLATTEN: {
            const ip_act *ia = &m->acts[op->in];
            if (din) flatten_backward(din, dout, ia->c, n, ia->h * ia->w);
            break;
        }
        case IP_OP_LINEAR:
            linear_backward(din, params ? m->grads + m->tensors[op->weight].offset : NULL,
                            params ? m->grads + m->tensors[op->bias].offset : NULL, dout, src,
                            m->params + m->tensors[op->weight].offset, n, op->in_features, op->c);
            break;
        }
        if (m->op_seconds) m->op_seconds[m->nops + i] += op_clock(m) - t0;
    }
    if (want_dx) {
        /* act 0 (C, N, H, W) -> dx (N, C, H, W), accumulated */
        const ip_act *in = &m->acts[0];
        size_t hw = (size_t)in->h * in->w;
        const float *d0 = dact_ptr(m, 0);
        for (int c = 0; c < in->c; c++)
            for (int i = 0; i < n; i++) {
                const float *s = d0 + ((size_t)c * n + i) * hw;
                float *d = dx + ((size_t)i * in->c + c) * hw;
                for (size_t k = 0; k < hw; k++) d[k] += s[k];
            }
    }
}

void ip_model_backward(ip_model *m, const float *dlogits, float *dx) { backward(m, dlogits, dx, 1); }

void ip_model_backward_input(ip_model *m, const float *dlogits, float *dx) {
    if (dx) backward(m, dlogits, dx, 0);
}

double ip_model_sign_loss(const ip_model *m) {
    double loss = 0;
    for (int i = 0; i < m->npassports; i++) {
        const ip_passport *p = &m->passports[i];
        loss += ip_sign_loss(NULL, p->gamma, p->bits, p->cout, IP_SIGN_ALPHA, IP_SIGN_GAMMA0, IP_SIGN_L2, 1.f);
    }
    return loss;
}

double ip_model_detect(ip_model *m, int p) {
    if (m->npassports == 0) return 0;
    ip_model_passport_affine(m);
    if (p >= 0) return ip_sign_detect(m->passports[p].gamma, m->passports[p].bits, m->passports[p].cout);
    double s = 0;
    for (int i = 0; i < m->npassports; i++)
        s += ip_sign_detect(m->passports[i].gamma, m->passports[i].bits, m->passports[i].cout);
    return s / m->npassports;
}

void ip_model_zero_grad(ip_model *m) { memset(m->grads, 0, m->nparams * sizeof(float)); }

/* FLOPs per sample of the first `end` ops' convolutions and linear layers. */
static double flops_of_ops(const ip_model *m, int end) {
    double f = 0;
    for (int i = 0; i < end; i++) {
        const ip_op *op = &m->ops[i];
        if (op->kind == IP_OP_CONV)
            f += 2.0 * op->conv.cout * (double)ip_conv_k(&op->conv) * op->conv.oh * op->conv.ow;
        else if (op->kind == IP_OP_LINEAR)
            f += 2.0 * op->in_features * op->c;
    }
    return f;
}

double ip_model_flops_per_sample(const ip_model *m) { return flops_of_ops(m, m->nops); }

double ip_model_flops_to(const ip_model *m, int act) { return flops_of_ops(m, ops_to(m, act)); }
