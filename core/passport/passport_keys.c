/* Passport key generation (see passport_keys.h). */
#include "passport_keys.h"

#include <stdlib.h>
#include <string.h>

#include "../util/rng.h"

static const char *const key_names[] = {"random", "image", "shuffle"};

const char *ip_key_type_name(ip_key_type t) { return (unsigned)t < 3 ? key_names[t] : "?"; }

int ip_key_type_parse(const char *s, ip_key_type *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(s, key_names[i]) == 0) return *out = (ip_key_type)i, 0;
    return -1;
}

size_t ip_keys_layer_floats(const ip_model *m, int layer) {
    return m->tensors[m->passports[layer].key_gamma].numel;
}

size_t ip_keys_offset(const ip_model *m, int layer) {
    size_t off = 0;
    for (int l = 0; l < layer; l++) off += 2 * ip_keys_layer_floats(m, l);
    return off;
}

size_t ip_keys_floats(const ip_model *m) { return ip_keys_offset(m, m->npassports); }

void ip_keys_from_model(const ip_model *m, float *keys) {
    for (int l = 0; l < m->npassports; l++) {
        const ip_passport *p = &m->passports[l];
        size_t n = ip_keys_layer_floats(m, l);
        memcpy(keys, m->bufs + m->tensors[p->key_gamma].offset, n * sizeof *keys);
        memcpy(keys + n, m->bufs + m->tensors[p->key_beta].offset, n * sizeof *keys);
        keys += 2 * n;
    }
}

void ip_keys_to_model(ip_model *m, const float *keys) {
    for (int l = 0; l < m->npassports; l++) {
        const ip_passport *p = &m->passports[l];
        size_t n = ip_keys_layer_floats(m, l);
        memcpy(m->bufs + m->tensors[p->key_gamma].offset, keys, n * sizeof *keys);
        memcpy(m->bufs + m->tensors[p->key_beta].offset, keys + n, n * sizeof *keys);
        keys += 2 * n;
    }
    ip_model_passports_changed(m);
}

int ip_keys_compatible(const ip_model *a, const ip_model *b, ip_err *e) {
    if (a->npassports != b->npassports)
        return ip_fail(e, "the models have %d and %d passport layers", a->npassports, b->npassports);
    for (int l = 0; l < a->npassports; l++) {
        const ip_passport *p = &a->passports[l], *q = &b->passports[l];
        const ip_tensor *tp = &a->tensors[p->key_gamma], *tq = &b->tensors[q->key_gamma];
        if (strcmp(p->layer, q->layer) != 0 || p->cout != q->cout || p->k != q->k ||
            memcmp(tp->shape, tq->shape, sizeof tp->shape) != 0)
            return ip_fail(e, "passport layer %d differs: %s (%d channels, key %dx%dx%d) vs %s (%d channels, key %dx%dx%d)",
                           l, p->layer, p->cout, tp->shape[1], tp->shape[2], tp->shape[3], q->layer, q->cout,
                           tq->shape[1], tq->shape[2], tq->shape[3]);
    }
    return 0;
}

/* ------------------------------------------------------------------------- */

void ip_keygen_free(ip_keygen *g) {
    free(g->x);
    free(g->taken);
    free(g->cache);
    g->x = NULL;
    g->taken = NULL;
    g->cache = NULL;
}

/* The first passport layer q <= l whose key reads the activation layer l's
 * does (ref_act): layers that read one activation share its cache record. */
static int first_reader(const ip_keygen *g, int l) {
    int q = 0;
    while (g->ref_act[q] != g->ref_act[l]) q++;
    return q;
}

int ip_keygen_init(ip_keygen *g, ip_key_type type, const ip_model *target, ip_model *ref,
                   const ip_dataset *images, uint64_t seed, ip_err *e) {
    memset(g, 0, sizeof *g);
    g->type = type;
    g->seed = seed;
    g->target = target;
    if ((unsigned)type > IP_KEY_SHUFFLE) return ip_fail(e, "bad key type %d", (int)type);
    if (target->npassports == 0) return ip_fail(e, "the model (%s, scheme %s) has no passport layers",
                                                target->cfg.arch, ip_scheme_name(target->cfg.scheme));
    if (type == IP_KEY_RANDOM) return 0;
    const char *tn = ip_key_type_name(type);
    if (!ref) return ip_fail(e, "key type %s needs a reference model", tn);
    if (!images || images->n == 0) return ip_fail(e, "key type %s needs images", tn);
    if (type == IP_KEY_SHUFFLE && images->n < IP_SHUFFLE_IMAGES)
        return ip_fail(e, "key type shuffle needs at least %d images, got %zu", IP_SHUFFLE_IMAGES, images->n);
    const ip_model_cfg *rc = &ref->cfg;
    if (images->c != rc->in_c || images->h != rc->in_h || images->w != rc->in_w)
        return ip_fail(e, "key images are %dx%dx%d but the reference model expects %dx%dx%d", images->c, images->h,
                       images->w, rc->in_c, rc->in_h, rc->in_w);
    size_t max_cin = 0;
    int last_producer = -1;
    g->ref_last = -1;
    for (int l = 0; l < target->npassports; l++) {
        const ip_passport *p = &target->passports[l];
        const ip_op *conv = &target->ops[p->conv_op];
        const int *ks = target->tensors[p->key_gamma].shape; /* (1, Cin, H, W) */
        int found = -1;
        for (int i = 0; i < ref->nops; i++)
            if (ref->ops[i].kind == IP_OP_CONV && strcmp(ref->ops[i].name, conv->name) == 0) found = i;
        if (found < 0)
            return ip_fail(e, "the reference model (%s) has no conv \"%s\" for passport layer %s", rc->arch,
                           conv->name, p->layer);
        int a = ref->ops[found].in;
        const ip_act *ra = &ref->acts[a];
        if (ra->c != ks[1] || ra->h != ks[2] || ra->w != ks[3] || ra->rowmajor)
            return ip_fail(e, "reference %s: the input of %s is %dx%dx%d, the passport key needs %dx%dx%d",
                           rc->arch, conv->name, ra->c, ra->h, ra->w, ks[1], ks[2], ks[3]);
        g->ref_act[l] = a == 0 ? -1 : a;
        if (a != 0) { /* its place in an image's cache record: beside an earlier layer reading a, or next */
            const int same = first_reader(g, l);
            g->cache_off[l] = same < l ? g->cache_off[same] : g->cache_floats;
            if (same == l) g->cache_floats += (size_t)ra->c * ra->h * ra->w;
        }
        int prod = a == 0 ? -1 : ip_model_producer(ref, a);
        if (prod > last_producer) last_producer = prod, g->ref_last = a;
        if ((size_t)ks[1] > max_cin) max_cin = (size_t)ks[1];
    }
    int batch = type == IP_KEY_SHUFFLE ? 2 * IP_SHUFFLE_IMAGES : 2;
    if (ref->batch < batch && ip_model_plan(ref, batch, e) != 0) return -1;
    size_t sample = (size_t)images->c * images->h * images->w;
    g->x = malloc((size_t)batch * sample * sizeof *g->x);
    g->taken_len = IP_SHUFFLE_IMAGES * max_cin;
    g->taken = malloc(g->taken_len ? g->taken_len : 1);
    if (!g->x || !g->taken) {
        ip_keygen_free(g);
        return ip_fail(e, "out of memory for key generation");
    }
    g->ref = ref;
    g->images = images;
    return 0;
}

static const float *image(const ip_keygen *g, uint32_t idx) {
    return g->images->x + (size_t)idx * g->images->c * g->images->h * g->images->w;
}

/* Plane (H*W floats) of channel c of sample s of the last reference forward (n samples). */
static const float *ref_plane(const ip_keygen *g, int l, int s, int c, int n) {
    const ip_act *a = &g->ref->acts[g->ref_act[l]];
    size_t hw = (size_t)a->h * a->w;
    return g->ref->arena + a->off + ((size_t)c * n + s) * hw;
}

/* Plane of channel c of layer l's activation for image idx[s]: from the
 * feature cache when there is one, else sample s of the last reference
 * forward (n samples). */
static const float *key_plane(const ip_keygen *g, int l, const uint32_t *idx, int s, int c, int n) {
    if (!g->cache) return ref_plane(g, l, s, c, n);
    const ip_act *a = &g->ref->acts[g->ref_act[l]];
    size_t hw = (size_t)a->h * a->w;
    return g->cache + (size_t)idx[s] * g->cache_floats + g->cache_off[l] + (size_t)c * hw;
}

int ip_keygen_caches(ip_key_type type, int ref_training, size_t floats_per_image, size_t images) {
    if (type != IP_KEY_SHUFFLE || ref_training || floats_per_image == 0 || images == 0) return 0;
    return floats_per_image <= IP_KEYGEN_CACHE_MAX_BYTES / sizeof(float) / images;
}

int ip_keygen_cache_features(ip_keygen *g, ip_err *e) {
    if (g->cache || !g->ref || g->ref_last < 0 ||
        !ip_keygen_caches(g->type, g->ref_training, g->cache_floats, g->images->n))
        return 0;
    ip_model *ref = g->ref;
    const size_t n_img = g->images->n;
    if (ref->batch < IP_KEYGEN_PASS && ip_model_plan(ref, IP_KEYGEN_PASS, e) != 0) return -1;
    g->cache = malloc(n_img * g->cache_floats * sizeof *g->cache); /* <= IP_KEYGEN_CACHE_MAX_BYTES */
    if (!g->cache) return ip_fail(e, "out of memory for the reference activations of %zu key images", n_img);
    for (size_t j0 = 0; j0 < n_img; j0 += IP_KEYGEN_PASS) {
        const int n = n_img - j0 < IP_KEYGEN_PASS ? (int)(n_img - j0) : IP_KEYGEN_PASS;
        ip_model_forward_to(ref, image(g, (uint32_t)j0), n, 0, g->ref_last); /* a pass's images are contiguous */
        for (int l = 0; l < g->target->npassports; l++) {
            /* the input (keys read the images themselves), or a record an earlier layer filled */
            if (g->ref_act[l] < 0 || first_reader(g, l) < l) continue;
            const ip_act *a = &ref->acts[g->ref_act[l]];
            const size_t hw = (size_t)a->h * a->w;
            for (int s = 0; s < n; s++)
                for (int c = 0; c < a->c; c++)
                    memcpy(g->cache + (j0 + (size_t)s) * g->cache_floats + g->cache_off[l] + (size_t)c * hw,
                           ref_plane(g, l, s, c, n), hw * sizeof *g->cache);
        }
    }
    return 0;
}

/* `count` distinct image indices (DeepIPR: random.sample). */
static void sample_distinct(ip_rng *r, uint32_t n, uint32_t *out, int count) {
    for (int i = 0; i < count; i++) {
        uint32_t v;
        int dup;
        do {
            v = ip_rng_below(r, n);
            dup = 0;
            for (int j = 0; j < i; j++) dup |= out[j] == v;
        } while (dup);
        out[i] = v;
    }
}

/* Runs the reference model on images idx[0..n) (eval mode unless
 * g->ref_training) as far as the last activation a key is read from: the
 * layers after it would not change a key (a shuffle key pays 40 images'
 * forward: on small-p the layers after its last passport input were 40%
 * of the key's time, docs/performance.md "Passport keys"). */
static void ref_forward(ip_keygen *g, const uint32_t *idx, int n) {
    if (g->ref_last < 0) return; /* every key is read from the images themselves */
    size_t sample = (size_t)g->images->c * g->images->h * g->images->w;
    for (int i = 0; i < n; i++) memcpy(g->x + (size_t)i * sample, image(g, idx[i]), sample * sizeof *g->x);
    ip_model_forward_to(g->ref, g->x, n, g->ref_training, g->ref_last);
}

/* DeepIPR's passport_selection on the activations of images [s0, s0+20) of
 * the last reference forward (n samples): channel k <- a random channel of
 * image s0 + (k mod 20), no (image, channel) pair twice. */
static void shuffle_key(ip_keygen *g, ip_rng *r, int l, int s0, int n, const uint32_t *idx, float *key) {
    const int *ks = g->target->tensors[g->target->passports[l].key_gamma].shape;
    int cin = ks[1];
    size_t hw = (size_t)ks[2] * ks[3];
    if (g->ref_act[l] < 0) { /* the network input: one whole image */
        uint32_t b = ip_rng_below(r, IP_SHUFFLE_IMAGES);
        memcpy(key, image(g, idx[s0 + (int)b]), (size_t)cin * hw * sizeof *key);
        return;
    }
    memset(g->taken, 0, (size_t)IP_SHUFFLE_IMAGES * cin);
    for (int k = 0; k < cin; k++) {
        int b = k % IP_SHUFFLE_IMAGES;
        uint32_t c;
        do c = ip_rng_below(r, (uint32_t)cin);
        while (g->taken[(size_t)b * cin + c]);
        g->taken[(size_t)b * cin + c] = 1;
        memcpy(key + (size_t)k * hw, key_plane(g, l, idx, s0 + b, (int)c, n), hw * sizeof *key);
    }
}

/* g->ref_training: the gamma images (1 for image, 20 for shuffle) pass the
 * reference alone, then the beta images, as set_intermediate_keys(x, y) runs
 * x and y (DeepIPR models/resnet_passport.py); each key half is read from its
 * own forward. */
static int generate_separately(ip_keygen *g, ip_rng *r, uint32_t n_img, float *keys) {
    const ip_model *m = g->target;
    int n = g->type == IP_KEY_SHUFFLE ? IP_SHUFFLE_IMAGES : 1;
    for (int half = 0; half < 2; half++) { /* 0: gamma keys, 1: beta keys */
        uint32_t idx[IP_SHUFFLE_IMAGES];
        if (n == 1) idx[0] = ip_rng_below(r, n_img);
        else sample_distinct(r, n_img, idx, n);
        ref_forward(g, idx, n);
        for (int l = 0; l < m->npassports; l++) {
            size_t lf = ip_keys_layer_floats(m, l);
            float *k = keys + ip_keys_offset(m, l) + (size_t)half * lf;
            if (n > 1) {
                shuffle_key(g, r, l, 0, n, idx, k);
            } else if (g->ref_act[l] < 0) {
                memcpy(k, image(g, idx[0]), lf * sizeof *k);
            } else {
                const ip_act *a = &g->ref->acts[g->ref_act[l]];
                size_t hw = (size_t)a->h * a->w;
                for (int c = 0; c < a->c; c++) memcpy(k + (size_t)c * hw, ref_plane(g, l, 0, c, 1), hw * sizeof *k);
            }
        }
    }
    return 0;
}

int ip_keygen_generate(ip_keygen *g, uint64_t index, float *keys, ip_err *e) {
    const ip_model *m = g->target;
    ip_rng r;
    ip_rng_init(&r, g->seed, ip_stream("passport-key", index));
    if (g->type == IP_KEY_RANDOM) {
        size_t n = ip_keys_floats(m);
        for (size_t i = 0; i < n; i++) keys[i] = ip_rng_range(&r, -1.f, 1.f);
        return 0;
    }
    if (!g->ref) return ip_fail(e, "key generator not initialised");
    uint32_t n_img = (uint32_t)(g->images->n > UINT32_MAX ? UINT32_MAX : g->images->n);
    if (g->ref_training) return generate_separately(g, &r, n_img, keys);
    if (g->type == IP_KEY_IMAGE) {
        uint32_t idx[2] = {ip_rng_below(&r, n_img), ip_rng_below(&r, n_img)}; /* gamma image, beta image */
        ref_forward(g, idx, 2);
        for (int l = 0; l < m->npassports; l++) {
            size_t lf = ip_keys_layer_floats(m, l);
            float *kg = keys + ip_keys_offset(m, l), *kb = kg + lf;
            if (g->ref_act[l] < 0) {
                memcpy(kg, image(g, idx[0]), lf * sizeof *kg);
                memcpy(kb, image(g, idx[1]), lf * sizeof *kb);
                continue;
            }
            const ip_act *a = &g->ref->acts[g->ref_act[l]];
            size_t hw = (size_t)a->h * a->w;
            for (int c = 0; c < a->c; c++) {
                memcpy(kg + (size_t)c * hw, ref_plane(g, l, 0, c, 2), hw * sizeof *kg);
                memcpy(kb + (size_t)c * hw, ref_plane(g, l, 1, c, 2), hw * sizeof *kb);
            }
        }
        return 0;
    }
    /* shuffle: 20 images for the gamma keys, 20 for the beta keys */
    uint32_t idx[2 * IP_SHUFFLE_IMAGES];
    sample_distinct(&r, n_img, idx, IP_SHUFFLE_IMAGES);
    sample_distinct(&r, n_img, idx + IP_SHUFFLE_IMAGES, IP_SHUFFLE_IMAGES);
    if (!g->cache) ref_forward(g, idx, 2 * IP_SHUFFLE_IMAGES);
    for (int l = 0; l < m->npassports; l++) {
        size_t lf = ip_keys_layer_floats(m, l);
        float *kg = keys + ip_keys_offset(m, l);
        shuffle_key(g, &r, l, 0, 2 * IP_SHUFFLE_IMAGES, idx, kg);
        shuffle_key(g, &r, l, IP_SHUFFLE_IMAGES, 2 * IP_SHUFFLE_IMAGES, idx, kg + lf);
    }
    return 0;
}
