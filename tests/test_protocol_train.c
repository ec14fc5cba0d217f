/* The `protocol` of the train kind (docs/passports.md "Protocols", rows 1, 2
 * and 8): resnet18-p's blocks, the checkpoint that remembers them, the
 * owner's key types, the kaiming-normal init and the weight decay. */
#include <criterion/criterion.h>
#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../core/io/ckpt.h"
#include "../core/model/model.h"
#include "../core/passport/passport_keys.h"
#include "testutil.h"

#define SRC "synthetic:256x1x16x16"

static char scratch[128];
static void setup(void) { cr_assert_not_null(tu_mkdtemp(scratch, sizeof scratch, "proto-train")); }
static void teardown(void) { tu_rmtree(scratch); }

static void build(ip_model *m, const char *arch, ip_scheme scheme, int protocol, int hw, int batch) {
    ip_model_cfg cfg = {0};
    snprintf(cfg.arch, sizeof cfg.arch, "%s", arch);
    cfg.in_c = 3, cfg.in_h = cfg.in_w = hw, cfg.classes = 10;
    cfg.norm = IP_NORM_GN, cfg.scheme = scheme, cfg.protocol = protocol;
    ip_err e = {{0}};
    cr_assert_eq(ip_model_build(m, &cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(m, 7, "ok", &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_plan(m, batch, &e), 0, "%s", e.msg);
}

/* The affine op of a resnet block's second conv or shortcut ("s2.b0.c2.norm", "s2.b0.sc.norm"). */
static int is_c2_or_sc(const ip_op *op) {
    return op->kind == IP_OP_AFFINE && op->name[0] == 's' && (strstr(op->name, ".c2.") || strstr(op->name, ".sc."));
}

Test(protocol, names_agree_with_the_key) {
    char choices[64];
    snprintf(choices, sizeof choices, "%s|%s", ip_protocol_name(IP_PROTOCOL_PAPER),
             ip_protocol_name(IP_PROTOCOL_DEEPIPR_CODE));
    cr_expect_str_eq(choices, IP_PROTOCOL_CHOICES);
    cr_expect_str_eq(ip_protocol_name(0), IP_PROTOCOL_DEFAULT);
    int p = -1;
    cr_expect_eq(ip_protocol_parse("deepipr-code", &p), 0);
    cr_expect_eq(p, IP_PROTOCOL_DEEPIPR_CODE);
    cr_expect_neq(ip_protocol_parse("code", &p), 0);
    const ip_param *row = ip_task_param(&ip_train_def, "protocol");
    cr_assert_not_null(row);
    ip_train_task t;
    ip_train_task_defaults(&t);
    cr_expect_eq(t.model.protocol, IP_PROTOCOL_PAPER);
    cr_expect_eq(t.key_type, IP_KEY_RANDOM);
}

/* Under deepipr-code resnet18-p differs from the paper's network by exactly
 * one ReLU after each block's second conv+norm and after each shortcut
 * conv+norm, before the addition (the authors' BasicPassportBlock.forward,
 * models/resnet_passport.py): the same ops otherwise, the paper network with
 * those flags set by hand computes the same logits bit for bit, both operands
 * of every addition are >= 0, and the ReLU after the addition stays. */
Test(protocol, resnet_blocks_relu_before_the_add) {
    ip_model p, c;
    build(&p, "resnet18-p", IP_SCHEME_V1, IP_PROTOCOL_PAPER, 8, 2);
    build(&c, "resnet18-p", IP_SCHEME_V1, IP_PROTOCOL_DEEPIPR_CODE, 8, 2);
    cr_assert_eq(p.nops, c.nops);
    cr_assert_eq(p.nparams, c.nparams);
    memcpy(c.params, p.params, p.nparams * sizeof(float)); /* the same weights (the init differs: below) */
    memcpy(c.bufs, p.bufs, p.nbufs * sizeof(float));
    ip_model_passports_changed(&c);
    int changed = 0;
    for (int i = 0; i < p.nops; i++) {
        cr_assert_str_eq(p.ops[i].name, c.ops[i].name);
        cr_assert_eq(p.ops[i].kind, c.ops[i].kind);
        if (p.ops[i].relu != c.ops[i].relu) {
            cr_expect(is_c2_or_sc(&p.ops[i]), "%s", p.ops[i].name);
            cr_expect(!p.ops[i].relu && c.ops[i].relu);
            changed++;
        }
        if (p.ops[i].kind == IP_OP_ADD) cr_expect(p.ops[i].relu && c.ops[i].relu, "the ReLU after the add stays");
    }
    cr_expect_eq(changed, 8 + 3, "8 second convs and 3 shortcut convs");

    float x[2 * 3 * 8 * 8];
    tu_fill(x, sizeof x / sizeof *x, -2, 2, 41);
    const float *lc = ip_model_forward(&c, x, 2, 1);
    float code_logits[20], paper_logits[20];
    memcpy(code_logits, lc, sizeof code_logits);
    for (int i = 0; i < c.nops; i++)
        if (c.ops[i].kind == IP_OP_ADD) {
            const ip_act *a = &c.acts[c.ops[i].in], *b = &c.acts[c.ops[i].in2];
            size_t n = (size_t)a->c * a->h * a->w * 2;
            for (size_t k = 0; k < n; k++) {
                cr_assert(c.arena[a->off + k] >= 0, "%s: residual branch < 0", c.ops[i].name);
                cr_assert(c.arena[b->off + k] >= 0, "%s: shortcut < 0", c.ops[i].name);
            }
        }
    memcpy(paper_logits, ip_model_forward(&p, x, 2, 1), sizeof paper_logits);
    cr_expect(memcmp(paper_logits, code_logits, sizeof code_logits) != 0, "the ReLUs change the logits");
    for (int i = 0; i < p.nops; i++)
        if (is_c2_or_sc(&p.ops[i])) p.ops[i].relu = 1; /* the naive variant: the paper net with those ReLUs */
    cr_expect(memcmp(ip_model_forward(&p, x, 2, 1), code_logits, sizeof code_logits) == 0);
    ip_model_free(&p);
    ip_model_free(&c);
}

/* alexnet-p and small-p already have a ReLU after every conv block: one network. */
Test(protocol, other_archs_same_network) {
    const char *archs[] = {"small-p", "alexnet-p"};
    for (int a = 0; a < 2; a++) {
        ip_model p, c;
        build(&p, archs[a], IP_SCHEME_V2, IP_PROTOCOL_PAPER, 32, 1);
        build(&c, archs[a], IP_SCHEME_V2, IP_PROTOCOL_DEEPIPR_CODE, 32, 1);
        cr_assert_eq(p.nops, c.nops);
        for (int i = 0; i < p.nops; i++) cr_expect_eq(p.ops[i].relu, c.ops[i].relu, "%s %s", archs[a], p.ops[i].name);
        ip_model_free(&p);
        ip_model_free(&c);
    }
}

/* deepipr-code: conv weights N(0, 2/fan_out) (kaiming_normal_, mode fan_out,
 * gain sqrt(2)); every other tensor (linear, norm affine, passports) as under
 * paper, bit for bit. */
Test(protocol, kaiming_normal_fan_out_init) {
    ip_model p, c;
    build(&p, "alexnet-p", IP_SCHEME_V1, IP_PROTOCOL_PAPER, 32, 1);
    build(&c, "alexnet-p", IP_SCHEME_V1, IP_PROTOCOL_DEEPIPR_CODE, 32, 1);
    int convs = 0;
    for (int ti = 0; ti < p.ntensors; ti++) {
        const ip_tensor *t = &p.tensors[ti];
        const float *a = t->kind == IP_TENSOR_PARAM ? ip_tensor_param(&p, ti) : ip_tensor_buf(&p, ti);
        const float *b = t->kind == IP_TENSOR_PARAM ? ip_tensor_param(&c, ti) : ip_tensor_buf(&c, ti);
        if (t->ndim != 4 || t->kind != IP_TENSOR_PARAM) {
            cr_expect(memcmp(a, b, t->numel * sizeof *a) == 0, "%s", t->name);
            continue;
        }
        convs++;
        double fan_out = (double)t->shape[0] * t->shape[2] * t->shape[3], fan_in = (double)t->numel / t->shape[0];
        double s = 0, s2 = 0, sp = 0;
        for (size_t i = 0; i < t->numel; i++) s += b[i], s2 += (double)b[i] * b[i], sp += (double)a[i] * a[i];
        double sd = sqrt(s2 / (double)t->numel), want = sqrt(2.0 / fan_out);
        /* tolerance: 5 standard errors of a sample sd (sd / sqrt(2n)) */
        cr_expect(fabs(sd - want) < 5 * want / sqrt(2.0 * (double)t->numel), "%s: sd %g, want %g", t->name, sd, want);
        cr_expect(fabs(s / (double)t->numel) < 5 * want / sqrt((double)t->numel), "%s: mean", t->name);
        /* the paper's: U(+-1/sqrt(fan_in)), sd 1/sqrt(3 fan_in) */
        double psd = sqrt(sp / (double)t->numel), pwant = 1 / sqrt(3 * fan_in);
        cr_expect(fabs(psd - pwant) < 5 * pwant / sqrt((double)t->numel), "%s: paper sd %g", t->name, psd);
    }
    cr_expect_eq(convs, 5);
    ip_model_free(&p);
    ip_model_free(&c);
}

/* The checkpoint keeps the protocol; a file without the attribute (written
 * before it existed) opens as the paper's network; a model of the other
 * protocol refuses it. */
Test(protocol, checkpoint_keeps_the_protocol, .init = setup, .fini = teardown) {
    ip_model c;
    build(&c, "resnet18-p", IP_SCHEME_V2, IP_PROTOCOL_DEEPIPR_CODE, 8, 2);
    ip_err e = {{0}};
    const char *path = tu_path(scratch, "code.h5");
    cr_assert_eq(ip_ckpt_save(&c, path, &e), 0, "%s", e.msg);
    ip_model_cfg cfg;
    cr_assert_eq(ip_ckpt_read_cfg(path, &cfg, &e), 0, "%s", e.msg);
    cr_expect_eq(cfg.protocol, IP_PROTOCOL_DEEPIPR_CODE);
    ip_model l = {0};
    cr_assert_eq(ip_ckpt_open_model(&l, path, &e), 0, "%s", e.msg);
    cr_expect_eq(l.cfg.protocol, IP_PROTOCOL_DEEPIPR_CODE);
    for (int i = 0; i < c.nops; i++) cr_expect_eq(l.ops[i].relu, c.ops[i].relu, "%s", c.ops[i].name);
    cr_assert_eq(ip_model_plan(&l, 2, &e), 0, "%s", e.msg);
    float x[2 * 3 * 8 * 8], want[20];
    tu_fill(x, sizeof x / sizeof *x, -2, 2, 43);
    memcpy(want, ip_model_forward(&c, x, 2, 0), sizeof want);
    cr_expect(memcmp(ip_model_forward(&l, x, 2, 0), want, sizeof want) == 0, "same logits after the round trip");
    ip_model_free(&l);

    ip_model p;
    build(&p, "resnet18-p", IP_SCHEME_V2, IP_PROTOCOL_PAPER, 8, 2);
    cr_expect_neq(ip_ckpt_load(&p, path, &e), 0);
    cr_expect(strstr(e.msg, "protocol mismatch"), "%s", e.msg);

    /* an older file: the same as the code checkpoint less its attribute */
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    cr_assert_geq(f, 0);
    cr_assert_geq(H5Adelete(f, "protocol"), 0);
    H5Fclose(f);
    cr_assert_eq(ip_ckpt_read_cfg(path, &cfg, &e), 0, "%s", e.msg);
    cr_expect_eq(cfg.protocol, IP_PROTOCOL_PAPER);
    cr_expect_eq(ip_ckpt_load(&p, path, &e), 0, "%s", e.msg);
    ip_model_free(&p);
    ip_model_free(&c);
}

/* weight_decay's default is "auto" (-1), resolved by the protocol in one
 * function; a value the user sets wins; other negatives are refused. */
Test(protocol, weight_decay_auto) {
    ip_train_task t;
    ip_train_task_defaults(&t);
    cr_expect_float_eq(t.train.opt.weight_decay, -1.f, 0);
    cr_expect_float_eq(ip_train_task_weight_decay(&t), 5e-4f, 0);
    t.model.protocol = IP_PROTOCOL_DEEPIPR_CODE;
    cr_expect_float_eq(ip_train_task_weight_decay(&t), 1e-4f, 0);
    t.train.opt.weight_decay = 0;
    cr_expect_float_eq(ip_train_task_weight_decay(&t), 0.f, 0);
    t.train.opt.weight_decay = 2e-3f;
    cr_expect_float_eq(ip_train_task_weight_decay(&t), 2e-3f, 0);
    t.train.opt.weight_decay = -0.5f;
    const char *key = NULL;
    char msg[256];
    cr_expect_neq(ip_train_def.check(&t, NULL, &key, msg, sizeof msg), 0);
    cr_expect_str_eq(key, "weight_decay");
}

/* The owner's passport keys of a trained checkpoint. */
static void train_keys(ip_key_type kt, int protocol, const char *name, ip_model *m) {
    ip_train_task t = tu_tiny_train(SRC, IP_SCHEME_V1, IP_NORM_BN, 0, tu_path(scratch, name));
    t.key_type = kt;
    t.model.protocol = protocol;
    ip_metrics out = {0};
    ip_err e = {{0}};
    cr_assert_eq(ip_task_train(&t, &out, &e), 0, "%s", e.msg);
    ip_metrics_free(&out);
    cr_assert_eq(ip_ckpt_open_model(m, tu_path(scratch, name), &e), 0, "%s", e.msg);
}

/* random keys are today's (the init stream's); image/shuffle keys are the
 * reference's features: small-p-narrow's passport layers read pooled ReLU
 * outputs, so every key value is >= 0 (random ones are not), they are
 * reproducible, and the protocols' references (eval mode on training images,
 * train mode on test images) give different keys. */
Test(protocol, owner_key_types, .init = setup, .fini = teardown) {
    ip_model r = {0}, s1 = {0}, s2 = {0}, sc = {0}, im = {0};
    train_keys(IP_KEY_RANDOM, IP_PROTOCOL_PAPER, "r.h5", &r);
    train_keys(IP_KEY_SHUFFLE, IP_PROTOCOL_PAPER, "s1.h5", &s1);
    train_keys(IP_KEY_SHUFFLE, IP_PROTOCOL_PAPER, "s2.h5", &s2);
    train_keys(IP_KEY_SHUFFLE, IP_PROTOCOL_DEEPIPR_CODE, "sc.h5", &sc);
    train_keys(IP_KEY_IMAGE, IP_PROTOCOL_DEEPIPR_CODE, "im.h5", &im);
    size_t n = ip_keys_floats(&r);
    cr_assert_eq(n, ip_keys_floats(&s1));
    float *k[5];
    ip_model *ms[5] = {&r, &s1, &s2, &sc, &im};
    for (int i = 0; i < 5; i++) {
        k[i] = malloc(n * sizeof(float));
        cr_assert_not_null(k[i]);
        ip_keys_from_model(ms[i], k[i]);
    }
    /* random: what ip_model_init drew (unchanged behaviour) */
    ip_model fresh;
    ip_err e = {{0}};
    ip_model_cfg cfg = r.cfg;
    cr_assert_eq(ip_model_build(&fresh, &cfg, &e), 0, "%s", e.msg);
    cr_assert_eq(ip_model_init(&fresh, 1, "ok", &e), 0, "%s", e.msg);
    float *kf = malloc(n * sizeof(float));
    ip_keys_from_model(&fresh, kf);
    cr_expect(memcmp(kf, k[0], n * sizeof(float)) == 0, "random keys are the init stream's");
    size_t neg = 0;
    for (size_t j = 0; j < n; j++) neg += k[0][j] < 0;
    cr_expect_gt(neg, n / 4);
    for (int i = 1; i < 5; i++)
        for (size_t j = 0; j < n; j++) cr_assert(k[i][j] >= 0, "model %d key %zu = %g", i, j, k[i][j]);
    cr_expect(memcmp(k[1], k[2], n * sizeof(float)) == 0, "reproducible");
    cr_expect(memcmp(k[1], k[3], n * sizeof(float)) != 0, "the protocols' references differ");
    cr_expect(memcmp(k[3], k[4], n * sizeof(float)) != 0);
    for (int i = 0; i < 5; i++) {
        free(k[i]);
        ip_model_free(ms[i]);
    }
    free(kf);
    ip_model_free(&fresh);
}
