/* The kind erb: the ERB ambiguity attack (Chen, Tian, Chen, Zhou, CVPR 2023;
 * docs/attacks.md "erb"): its parameter table, then its task code on the
 * blocks of core/passport/erb.h and the attacks' shared loop (att_loop.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../model/train.h"
#include "../passport/attacks.h"
#include "../passport/erb.h"
#include "../passport/signature.h"
#include "../util/rng.h"
#include "att_loop.h"
#include "param.h"
#include "tasks.h"

#define T ip_erb_task
static const ip_param erb_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the passport model (v1, v2 or v3) whose passport is forged"),
    P_ENUM(T, "block", block, "cerb", "cerb|ierb|none", NULL,
           "block in front of the free scale: collective (C -> C/8 -> C), individual (1 -> 10 -> 1 per channel), "
           "or none (the plain attack: scale and bias trained directly)"),
    P_FLOAT(T, "fraction", IP_F_DOUBLE, fraction, 0.1, 1e-9, 1,
            "fraction of the owner's training data the attacker has"),
    P_ENUM(T, "target", target, "none", "none|flip|signature", NULL,
           "signature the sign loss pulls the forged scale towards: none, the owner's with flip_fraction of each "
           "layer's bits flipped, or the attacker's own text `signature`"),
    P_FLOAT(T, "flip_fraction", IP_F_DOUBLE, flip_fraction, 0.5, 0, 1,
            "target flip: fraction of the owner's signature bits (per layer) flipped"),
    P_STR(T, "signature", signature, "", "target signature: the attacker's text (8 bits per character)"),
    P_FLOAT(T, "sign_loss", IP_F_DOUBLE, sign_loss, 1, 0, 1e9, "weight of the sign loss towards the target"),
    IP_OPTIM_ROWS(T, opt),
    P_INT(T, "epochs", IP_F_INT, epochs, 10, 0, 100000, "training epochs over the attacker's data"),
    P_INT(T, "batch", IP_F_INT, batch, 64, 1, 65536, "training minibatch size (evaluations use at least 256)"),
    SEED_KEY,
};
_Static_assert(IP_ERB_CERB == 0 && IP_ERB_IERB == 1 && IP_ERB_NONE == 2, "choices in enum order");
_Static_assert(IP_ERB_TARGET_NONE == 0 && IP_ERB_TARGET_FLIP == 1 && IP_ERB_TARGET_SIGNATURE == 2,
               "choices in enum order");

/* A target and its source go together: the text only with target signature, which needs one. */
static int erb_check(const void *task, const struct ip_input_shape *shape, const char **key, char *msg, size_t cap) {
    (void)shape;
    const T *t = task;
    if (t->target == IP_ERB_TARGET_SIGNATURE && !t->signature[0]) {
        *key = "target";
        snprintf(msg, cap, "target: signature needs the attacker's text in `signature`");
        return -1;
    }
    if (t->target != IP_ERB_TARGET_SIGNATURE && t->signature[0]) {
        *key = "signature";
        snprintf(msg, cap, "signature is the attacker's target text: it needs target: signature");
        return -1;
    }
    return 0;
}

IP_OPTIM_INIT(erb_init, T)
static int erb_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_erb(t, out, e); }
const ip_task_def ip_erb_def = {
    .name = "erb",
    .doc = "ERB ambiguity attack (Chen et al. 2023): learn a passport layer's scale through an expanded residual "
           "block; docs/attacks.md",
    IP_ROWS(erb_params),
    .size = sizeof(T),
    .init = erb_init,
    .at_data = IP_AT(T, data),
    .at_train_limit = IP_AT(T, train_limit),
    .at_test_limit = IP_AT(T, test_limit),
    .at_seed = {IP_AT(T, seed)},
    .at_resume = IP_AT(T, resume),
    .check = erb_check,
    .run = erb_run,
};
#undef T

void ip_erb_task_defaults(ip_erb_task *t) { ip_task_defaults(&ip_erb_def, t); }

/* The evaluations' batch (at least): the attack's small minibatches give more steps on little data, but
 * evaluating the test split in them would cost more than the attack. Evaluation runs in eval mode, so the
 * batch does not change what it computes. */
#define ERB_EVAL_BATCH 256

/* The attack's vector: per passport layer p, at off[p]: gamma (C), beta (C), the block's weights. */
typedef struct erb_state {
    ip_erb_block block;
    size_t off[IP_MAX_PASSPORTS + 1];
    size_t pre_off[IP_MAX_PASSPORTS + 1];
    float *pre;                 /* the blocks' saved pre-activations, at pre_off[p] */
    float *hid;                 /* backward scratch: the largest hidden width */
    const int8_t *owner_bits;   /* every layer's, concatenated */
    const int8_t *target_bits;  /* NULL: no target */
    double sign_loss;
    const ip_dataset *test;
    ip_metrics *out;
    int batch;
} erb_state;

/* Writes gamma'' = block(gamma) and beta into every passport layer's learned affine. */
static void erb_apply(att_loop *l) {
    const erb_state *s = l->user;
    ip_model *m = l->m;
    for (int p = 0; p < m->npassports; p++) {
        const ip_op *aff = &m->ops[m->passports[p].affine_op];
        const size_t c = (size_t)m->passports[p].cout;
        const float *v = l->keys + s->off[p];
        ip_erb_forward(s->block, c, v + 2 * c, v, ip_tensor_param(m, aff->weight), s->pre + s->pre_off[p]);
        memcpy(ip_tensor_param(m, aff->bias), v + c, c * sizeof(float));
    }
}

/* dvec from the affine gradients the backward left, plus the sign loss on gamma''; returns that loss. */
static double erb_grad(att_loop *l, float *dvec) {
    const erb_state *s = l->user;
    ip_model *m = l->m;
    double loss = 0;
    const int8_t *tb = s->target_bits;
    for (int p = 0; p < m->npassports; p++) {
        const ip_op *aff = &m->ops[m->passports[p].affine_op];
        const size_t c = (size_t)m->passports[p].cout;
        float *dg2 = m->grads + m->tensors[aff->weight].offset;
        if (tb) {
            loss += s->sign_loss * ip_sign_loss(dg2, ip_tensor_param(m, aff->weight), tb, (int)c, IP_SIGN_ALPHA,
                                                IP_SIGN_GAMMA0, IP_SIGN_L2, (float)s->sign_loss);
            tb += c;
        }
        const float *v = l->keys + s->off[p];
        float *dv = dvec + s->off[p];
        ip_erb_backward(s->block, c, v + 2 * c, v, s->pre + s->pre_off[p], dg2, dv, dv + 2 * c, s->hid);
        const float *db = m->grads + m->tensors[aff->bias].offset;
        for (size_t i = 0; i < c; i++) dv[c + i] += db[i];
    }
    return loss;
}

/* Mean over the passport layers of the detection of the forged scales (the affine weights) against bits. */
static double scale_detect(const ip_model *m, const int8_t *bits) {
    double d = 0;
    for (int p = 0; p < m->npassports; p++) {
        const ip_passport *pp = &m->passports[p];
        d += ip_sign_detect(ip_tensor_param(m, m->ops[pp->affine_op].weight), bits, pp->cout);
        bits += pp->cout;
    }
    return d / m->npassports;
}

/* Evaluates only after the last epoch: the test set is larger than the attacker's data, so an evaluation
 * per epoch would cost more than the attack (the quick study runs 18 of them). */
static int erb_epoch_end(att_loop *l, int epoch, ip_err *e) {
    if (epoch + 1 < l->epochs) return 0;
    const erb_state *s = l->user;
    double acc;
    if (ip_evaluate(l->m, s->test, s->batch, &acc, e) != 0 || ip_metrics_set(s->out, "forged_acc", acc, e) != 0 ||
        ip_metrics_set(s->out, "owner_detect", scale_detect(l->m, s->owner_bits), e) != 0)
        return -1;
    return s->target_bits ? ip_metrics_set(s->out, "forged_detect", scale_detect(l->m, s->target_bits), e) : 0;
}

/* A v2/v3 batch norm keeps the passport branch's running statistics apart
 * (docs/passports.md): the attack normalises with them, as the passport path
 * the forgery is meant for does, so they stand in for the public ones. */
static void use_private_stats(ip_model *m) {
    for (int i = 0; i < m->nops; i++) {
        const ip_op *op = &m->ops[i];
        if (op->kind != IP_OP_NORM || op->private_mean < 0) continue;
        memcpy(ip_tensor_buf(m, op->running_mean), ip_tensor_buf(m, op->private_mean),
               m->tensors[op->running_mean].numel * sizeof(float));
        memcpy(ip_tensor_buf(m, op->running_var), ip_tensor_buf(m, op->private_var),
               m->tensors[op->running_var].numel * sizeof(float));
    }
}

/* The target signature of every layer, concatenated (owner's bits flipped, or the attacker's text). */
static int target_bits(const ip_erb_task *t, const ip_model *m, int8_t *bits, ip_err *e) {
    for (int p = 0; p < m->npassports; p++) {
        const ip_passport *pp = &m->passports[p];
        if (t->target == IP_ERB_TARGET_SIGNATURE) {
            if (ip_signature_bits(bits, pp->cout, t->signature, t->seed, ip_stream("erb-target", (uint64_t)p), e) != 0)
                return ip_failctx(e, "the target signature in layer %s", pp->layer);
        } else {
            memcpy(bits, pp->bits, (size_t)pp->cout);
            int k = ip_attack_count(t->flip_fraction, pp->cout);
            uint32_t *perm = malloc((size_t)pp->cout * sizeof *perm);
            if (!perm) return ip_fail(e, "out of memory");
            ip_rng r;
            ip_rng_init(&r, t->seed, ip_stream("erb-target", (uint64_t)p));
            ip_rng_permutation(&r, perm, (size_t)pp->cout);
            for (int i = 0; i < k; i++) bits[perm[i]] = (int8_t)-bits[perm[i]];
            free(perm);
        }
        bits += pp->cout;
    }
    return 0;
}

/* The forged passport: minimum-norm keys reproducing every layer's gamma''/beta, evaluated through the
 * passport path (the private branch) as a verifier would. */
static int forged_passport(ip_model *m, const ip_dataset *test, int batch, ip_metrics *out, ip_err *e) {
    double worst = 0;
    for (int p = 0; p < m->npassports; p++) {
        const ip_passport *pp = &m->passports[p];
        const ip_op *aff = &m->ops[pp->affine_op];
        double r;
        if (ip_erb_solve_passport(m, p, ip_tensor_param(m, aff->weight), ip_tensor_param(m, aff->bias),
                                  ip_tensor_buf(m, pp->key_gamma), ip_tensor_buf(m, pp->key_beta), &r, e) != 0)
            return -1;
        if (r > worst) worst = r;
    }
    ip_model_passports_changed(m);
    m->branch = IP_BRANCH_PRIVATE;
    double acc;
    if (ip_evaluate(m, test, batch, &acc, e) != 0) return -1;
    if (ip_metrics_set(out, "passport_acc", acc, e) != 0 ||
        ip_metrics_set(out, "passport_detect", ip_model_detect(m, -1), e) != 0)
        return -1;
    return ip_metrics_set(out, "passport_residual", worst, e);
}

int ip_task_erb(const ip_erb_task *t, ip_metrics *out, ip_err *e) {
    ip_model m = {0};
    ip_dataset train = {0}, test = {0};
    float *vec = NULL, *pre = NULL, *hid = NULL;
    int8_t *owner = NULL, *target = NULL;
    ip_saver sv = {0};
    int rc = -1;
    if ((unsigned)t->block > IP_ERB_NONE) return ip_fail(e, "bad erb block %d", (int)t->block);
    if ((unsigned)t->target > IP_ERB_TARGET_SIGNATURE) return ip_fail(e, "bad erb target %d", (int)t->target);
    if (!(t->flip_fraction >= 0 && t->flip_fraction <= 1))
        return ip_fail(e, "flip_fraction must be in [0, 1], got %g", t->flip_fraction);
    if (!(t->sign_loss >= 0)) return ip_fail(e, "sign_loss must be >= 0, got %g", t->sign_loss);
    {
        const char *key;
        char msg[256];
        if (erb_check(t, NULL, &key, msg, sizeof msg) != 0) return ip_fail(e, "%s", msg);
    }
    if (ip_saver_open(&sv, &t->resume, ip_task_ident(&ip_erb_def, t), e) < 0) goto done;
    if (ip_att_setup(&m, &train, &test, t->model_path, t->data, t->train_limit, t->test_limit, t->fraction, 0,
                     t->batch, e) != 0 ||
        ip_att_require_passports(&m, "erb", e) != 0)
        goto done;
    const int eval_batch = t->batch > ERB_EVAL_BATCH ? t->batch : ERB_EVAL_BATCH;
    if (ip_model_plan(&m, eval_batch, e) != 0) goto done; /* training runs t->batch <= eval_batch samples */
    double acc;
    m.branch = IP_BRANCH_PRIVATE;
    if (ip_evaluate(&m, &test, eval_batch, &acc, e) != 0 || ip_metrics_set(out, "real_acc", acc, e) != 0) goto done;

    erb_state st = {.block = t->block, .sign_loss = t->sign_loss, .test = &test, .out = out, .batch = eval_batch};
    size_t nbits = 0, maxh = 1;
    for (int p = 0; p < m.npassports; p++) {
        const size_t c = (size_t)m.passports[p].cout;
        st.off[p + 1] = st.off[p] + 2 * c + ip_erb_nparams(t->block, c);
        st.pre_off[p + 1] = st.pre_off[p] + ip_erb_scratch(t->block, c);
        if (ip_erb_hidden(t->block, c) > maxh) maxh = ip_erb_hidden(t->block, c);
        nbits += c;
    }
    const size_t nvec = st.off[m.npassports];
    vec = malloc(nvec * sizeof *vec);
    pre = malloc((st.pre_off[m.npassports] + 1) * sizeof *pre);
    hid = malloc(maxh * sizeof *hid);
    owner = malloc(nbits);
    target = t->target != IP_ERB_TARGET_NONE ? malloc(nbits) : NULL;
    if (!vec || !pre || !hid || !owner || (t->target != IP_ERB_TARGET_NONE && !target)) {
        ip_fail(e, "out of memory for the attack's %zu values", nvec);
        goto done;
    }
    st.pre = pre, st.hid = hid, st.owner_bits = owner, st.target_bits = target;
    for (int p = 0, o = 0; p < m.npassports; o += m.passports[p].cout, p++)
        memcpy(owner + o, m.passports[p].bits, (size_t)m.passports[p].cout);
    if (target && target_bits(t, &m, target, e) != 0) goto done;

    /* Algorithm 1, lines 1-4: a norm layer with a free scale (1) and bias (0) in each passport layer's place,
     * a freshly initialised block in front of the scale; nothing else trains, nothing else changes */
    ip_attack_passport_to_affine(&m);
    use_private_stats(&m);
    ip_att_set_all_trainable(&m, 0);
    for (int p = 0; p < m.npassports; p++) {
        const size_t c = (size_t)m.passports[p].cout;
        float *v = vec + st.off[p];
        for (size_t i = 0; i < c; i++) v[i] = 1.f, v[c + i] = 0.f;
        ip_erb_init(t->block, c, v + 2 * c, t->seed, ip_stream("erb-block", (uint64_t)p));
        const ip_op *aff = &m.ops[m.passports[p].affine_op];
        m.tensors[aff->weight].trainable = m.tensors[aff->bias].trainable = 1; /* their gradients feed the vector */
    }
    att_loop l = {.m = &m, .train = &train, .epochs = t->epochs, .batch = t->batch, .training = 0, .seed = t->seed,
                  .opt = t->opt, .keys = vec, .epoch_end = erb_epoch_end, .user = &st, .sv = &sv, .out = out,
                  .nvec = nvec, .vec_apply = erb_apply, .vec_grad = erb_grad};
    erb_apply(&l);
    if (ip_evaluate(&m, &test, eval_batch, &acc, e) != 0 || ip_metrics_set(out, "init_acc", acc, e) != 0 ||
        ip_metrics_set(out, "train_samples", (double)train.n, e) != 0)
        goto done;
    if (ip_att_run_loop(&l, e) != 0) goto done;
    if (t->epochs == 0 && erb_epoch_end(&l, -1, e) != 0) goto done;
    if (forged_passport(&m, &test, eval_batch, out, e) != 0) goto done;
    rc = 0;
done:
    if (rc == 0) ip_saver_done(&sv);
    else ip_saver_close(&sv);
    free(vec), free(pre), free(hid), free(owner), free(target);
    ip_model_free(&m);
    ip_data_free(&train);
    ip_data_free(&test);
    return rc;
}
