/* Models: a list of layer ops over numbered activation tensors.
 *
 * Memory (as in llm.c): every parameter lives in one flat float array
 * `params`, its gradient at the same offset in `grads`, optimiser state in one
 * more allocation (optim.h). Non-trained state (batch-norm running statistics,
 * passport tensors) lives in `bufs`. ip_model_plan() allocates every
 * activation and workspace buffer for a batch size once, and
 * ip_model_plan_backward() the activation gradients (a forward-only user never
 * pays for them); the forward never allocates, the backward only that once.
 *
 * Tensors are registered by name ("block1.conv.weight") with PyTorch shapes;
 * the checkpoint code and the optimiser walk that registry. */
#ifndef IP_MODEL_H
#define IP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "../io/data.h"
#include "../util/err.h"
#include "../nn/layers.h"

#define IP_MAX_TENSORS 160
#define IP_MAX_OPS 128
#define IP_MAX_ACTS 128
#define IP_MAX_PASSPORTS 24
#define IP_NAME_LEN 64

typedef enum { IP_NORM_BN = 0, IP_NORM_GN = 1 } ip_norm_kind;
typedef enum { IP_SCHEME_BASELINE = 0, IP_SCHEME_V1, IP_SCHEME_V2, IP_SCHEME_V3 } ip_scheme;
/* Which gamma/beta a passport layer uses in a forward pass. */
typedef enum { IP_BRANCH_PRIVATE = 0, IP_BRANCH_PUBLIC = 1 } ip_branch;

const char *ip_norm_name(ip_norm_kind k);
const char *ip_scheme_name(ip_scheme s);
int ip_norm_parse(const char *s, ip_norm_kind *out);
int ip_scheme_parse(const char *s, ip_scheme *out);
/* Where the DeepIPR paper and its authors' code (kamwoh/DeepIPR) part ways
 * (docs/passports.md "Protocols"): the model keeps whose network it is
 * (cfg.protocol: resnet18-p's block ReLUs, the conv init), and the task
 * kinds concerned take it as their `protocol` key (core/tasks/param.h
 * P_PROTOCOL). IP_PROTOCOL_CHOICES spells the names in enum order; the name
 * table of ip_protocol_name is tested against it. */
typedef enum { IP_PROTOCOL_PAPER = 0, IP_PROTOCOL_DEEPIPR_CODE = 1 } ip_protocol;
#define IP_PROTOCOL_CHOICES "paper|deepipr-code"
const char *ip_protocol_name(int protocol);
int ip_protocol_parse(const char *s, int *out);

typedef struct ip_model_cfg {
    char arch[32];            /* small-p | alexnet-p | resnet18-p (see docs/models.md) */
    int in_c, in_h, in_w;     /* input shape, from the dataset */
    int classes;
    ip_norm_kind norm;
    ip_scheme scheme;
    /* Which conv blocks are passport layers: "" or "default" = the arch's
     * default set (REFERENCE.md), "none", or a comma list of block names
     * ("block1,block2"). Ignored (none) for the baseline scheme. */
    char passport_layers[256];
    /* Input normalisation the model was trained with (per channel; mean 0 /
     * std 1 when none): evaluation applies the same, and the checkpoint keeps it. */
    float in_mean[4], in_std[4];
    /* Whose network: an ip_protocol value (core/tasks/param.h; ip_protocol_name
     * below): 0 the paper's, 1 the DeepIPR authors' code's. It changes
     * resnet18-p's blocks (a ReLU after the second conv+norm and after the
     * shortcut's, docs/models.md) and ip_model_init's conv init; the
     * checkpoint keeps it, so every later task builds the same network. */
    int protocol;
    /* ip_conv_algo (core/nn/layers.h): IP_CONV_FAST (0, Winograd F(4x4) where
     * faster) or IP_CONV_PRECISE (Winograd only as F(2x2, 3x3): float32 error at
     * PyTorch's level, slower; docs/performance.md "Numerics"). The train key
     * `conv`; the checkpoint keeps it, so every task on a model computes as its
     * training did. */
    int conv;
} ip_model_cfg;

typedef enum { IP_TENSOR_PARAM = 0, IP_TENSOR_BUFFER = 1, IP_TENSOR_PASSPORT = 2 } ip_tensor_kind;

typedef struct ip_tensor {
    char name[IP_NAME_LEN];   /* "<layer>.<field>", e.g. "block1.conv.weight" */
    ip_tensor_kind kind;      /* PARAM: in params/grads; BUFFER, PASSPORT: in bufs */
    int ndim;
    int shape[4];
    size_t offset, numel;
    int trainable;            /* PARAM only: updated by the optimiser (freezing clears it) */
    int fallback;             /* -1, or the tensor whose stored values stand in when a checkpoint
                               * lacks this one (written before this tensor existed) */
} ip_tensor;

typedef enum {
    IP_OP_CONV,      /* act[out] = conv(act[in]) */
    IP_OP_NORM,      /* act[out] = normalise(act[in]) (no affine) */
    IP_OP_AFFINE,    /* act[out] = act?(gamma*act[in] + beta), gamma/beta learned or from a passport */
    IP_OP_ADD,       /* act[out] = act?(act[in] + act[in2]) */
    IP_OP_POOL,      /* max-pool 2x2 */
    IP_OP_GAP,       /* global average pool -> (N, C) */
    IP_OP_FLATTEN,   /* (C,N,H,W) -> (N, C*H*W) */
    IP_OP_LINEAR
} ip_op_kind;

typedef struct ip_op {
    ip_op_kind kind;
    char name[IP_NAME_LEN];   /* layer name, e.g. "block1.conv" */
    int in, in2, out;         /* activation ids (in2 only for ADD) */
    int relu;                 /* AFFINE / ADD: apply ReLU */
    ip_conv_shape conv;       /* CONV: per-batch shape (n set by plan) */
    ip_norm_shape norm;       /* NORM */
    int c, h, w;              /* output shape per sample (C, H, W); linear: c = out features, h = w = 1 */
    int in_features;          /* LINEAR */
    int weight, bias;         /* tensor ids (CONV: weight; AFFINE: learned gamma/beta; LINEAR: both), -1 none */
    int running_mean, running_var; /* NORM, batch norm: buffer tensor ids (baseline, v1, public branch) */
    /* NORM, batch norm of a v2/v3 model whose input depends on a passport
     * layer: the private branch's own running statistics (-1 otherwise;
     * docs/passports.md "Batch norm in v2/v3") */
    int private_mean, private_var;
    int passport;             /* AFFINE: index into m->passports, -1 when not a passport layer */
    int conv_op;              /* AFFINE of a passport layer: the CONV op whose weight derives gamma/beta */
    size_t stats_off;         /* NORM: offset of mean/rstd in the activation arena */
    size_t argmax_off;        /* POOL: offset (in uint32) of argmax in the index arena */
} ip_op;

typedef struct ip_passport {
    char layer[IP_NAME_LEN];  /* block name, e.g. "block1" */
    int conv_op, affine_op;
    int key_gamma, key_beta;  /* PASSPORT tensor ids, shape (1, Cin, H, W) */
    int cout;
    size_t k;                 /* Cin*KH*KW */
    float *colmean_gamma;     /* (K) derived from the keys by ip_model_passports_changed() */
    float *colmean_beta;      /* (K) */
    float *gamma, *beta;      /* (Cout) last computed passport gamma/beta */
    float *dgamma, *dbeta;    /* (Cout) backward scratch */
    int8_t *bits;             /* (Cout) signature, +1/-1 */
    char signature[128];      /* the text embedded in bits (may be empty) */
} ip_passport;

typedef struct ip_act {
    int c, h, w;              /* per-sample shape */
    int rowmajor;             /* 0: (C, N, H, W) channel-major; 1: (N, C*H*W) */
    /* Set by ip_model_plan (core/model/plan.c). An activation the fused
     * conv-block tails never write (a batch norm's xhat; the affine's
     * output when the tail pools) has no storage (stored = 0); gradients
     * share darena where their lifetimes in the backward pass do not
     * overlap, so doff differs from off. */
    int stored;               /* 1 when off names storage in the arena */
    size_t off;               /* offset in the activation arena (floats) */
    size_t doff;              /* offset of its gradient in darena (floats); only during backward */
} ip_act;

/* An accuracy and the digests of what it was computed from
 * (core/model/evalrec.h). */
#define IP_EVAL_RECORDS 8
typedef struct ip_eval_record {
    uint64_t model;  /* ip_model_digest: configuration, weights, buffers, signature bits */
    uint64_t data;   /* ip_data_digest: images, labels, normalisation */
    int32_t pass;    /* images per eval-mode forward (the sums' order can depend on it) */
    int32_t branch;  /* ip_branch evaluated */
    double acc;
} ip_eval_record;

typedef struct ip_model {
    ip_model_cfg cfg;
    ip_tensor tensors[IP_MAX_TENSORS];
    int ntensors;
    ip_op ops[IP_MAX_OPS];
    int nops;
    ip_act acts[IP_MAX_ACTS];  /* act 0 is the input (C, N, H, W); the last op's output is the logits (N, classes) */
    int nacts;
    ip_passport passports[IP_MAX_PASSPORTS];
    int npassports;
    /* v3: the trigger set (core/passport/trigger.h), pixels in [0, 1], not
     * normalised; n = 0 when the model has none. Saved with the checkpoint. */
    ip_dataset trigger;
    uint64_t trigger_seed;     /* the seed it was generated from (documentation) */

    float *params, *grads;     /* nparams each, one allocation each */
    size_t nparams;
    float *bufs;               /* nbufs */
    size_t nbufs;
    float *passport_scratch;   /* colmeans, gamma/beta, dgamma/dbeta of every passport layer */
    int8_t *bits_store;        /* signature bits of every passport layer */

    /* planned for a batch size */
    int batch;                 /* 0 until planned */
    float *arena;              /* activations + norm statistics */
    float *darena;             /* activation gradients (ip_act.doff; shared between lifetimes); NULL until
                                * ip_model_plan_backward (or the first backward) */
    size_t arena_floats, darena_floats;
    uint32_t *index_arena;     /* pool argmax */
    float *work;               /* conv workspace; also a fused group-norm tail's backward sums (plan.c) */
    size_t work_floats;
    float *dlogits;            /* (batch, classes) */
    int cur_n;                 /* batch of the last forward */
    int cur_training;
    int cur_infer;             /* the last forward was ip_model_infer's: no backward may follow */

    ip_branch branch;          /* which gamma/beta passport layers use */
    float sign_loss_scale;     /* weight of the sign loss added in backward (private branch only); 0 = off */
    float bn_momentum, bn_eps; /* 0.1, 1e-5 */
    /* Accuracies computed on this model, with what they were computed from
     * (core/model/evalrec.h): ip_evaluate answers from them when the model,
     * data and pass are the same, checkpoints keep the ones of the saved
     * weights. Oldest first; copied with the model. */
    ip_eval_record evals[IP_EVAL_RECORDS];
    int nevals;
    /* When non-NULL (2 * nops doubles), forward/backward add each op's
     * wall time in seconds: [i] forward, [nops + i] backward. */
    double *op_seconds;
} ip_model;

/* Checks the input shape and classes against the limits of data.h (a bad
 * input error naming the values); ip_model_build and the checkpoint reader
 * call it. */
int ip_model_cfg_check_shape(const ip_model_cfg *cfg, ip_err *e);
/* The layer list and tensor registry of ip_model_build without allocating
 * anything (m owns no memory afterwards): the sizes a config implies, for
 * checking them against a file before allocating them. */
int ip_model_layout(ip_model *m, const ip_model_cfg *cfg, ip_err *e);
/* Builds the layer list and the tensor registry and allocates params, grads
 * and bufs (zeroed). Parameters are not initialised: call ip_model_init. */
int ip_model_build(ip_model *m, const ip_model_cfg *cfg, ip_err *e);
/* PyTorch's default initialisation (kaiming-uniform a=sqrt(5) weights,
 * uniform(+-1/sqrt(fan_in)) linear bias, norm weight 1 / bias 0, running
 * var 1); under the deepipr-code protocol (cfg.protocol) conv weights are
 * kaiming-normal, mode fan_out, gain sqrt(2) instead (docs/models.md). Random passports (uniform [-1,1]) and signature bits (random, or
 * `signature` text in every passport layer when not NULL/empty), all from
 * counter-based streams of `seed`. */
int ip_model_init(ip_model *m, uint64_t seed, const char *signature, ip_err *e);
/* Sets the conv algorithm of every conv op (and cfg.conv); re-plans the
 * workspace for the current batch when the model is planned (FAST needs more). */
int ip_model_set_conv(ip_model *m, int algo, ip_err *e);
/* Allocates activations for up to `batch` samples (what a forward pass needs)
 * and lays out their gradients (darena_floats) without allocating them; frees
 * any previous plan, gradients included. */
int ip_model_plan(ip_model *m, int batch, ip_err *e);
/* Allocates the activation gradients of the current plan (once; 0 when they
 * exist). Users of the backward call it after planning to hear of a failure:
 * the backward calls it too when they did not (core/model/plan.c). */
int ip_model_plan_backward(ip_model *m, ip_err *e);
void ip_model_free(ip_model *m);

/* Recomputes the derived colmeans after passport keys changed (init, load, forging). */
void ip_model_passports_changed(ip_model *m);
/* Sets a passport layer's signature text (bits for the first 8L channels, rest random from seed). */
int ip_model_set_signature(ip_model *m, int passport, const char *text, uint64_t seed, ip_err *e);

/* The buffers and settings of one op's forward (ip_op_forward). The model
 * fills it from its planned arena, the forger (forge.c) from its shared and
 * virtual arenas: one interpreter of ip_op for both, so a new op kind is
 * added in one place. Activations are channel-major (C, N, H, W) except
 * after FLATTEN (N, C*H*W). */
typedef struct ip_op_io {
    float *out;               /* act[op->out] */
    const float *in;          /* act[op->in], n samples */
    const float *in2;         /* ADD: act[op->in2], n2 samples */
    int n, n2;                /* samples of in, of in2 (n2 = n unless ADD broadcasts). ADD with n != n2
                               * (the forger: a per-passport activation of G * chunk samples plus one
                               * shared by the group, chunk samples): the smaller operand is added to
                               * each of the larger one's max(n,n2) / min(n,n2) consecutive copies */
    int training;             /* NORM: batch statistics (and update the running ones), else running ones */
    ip_branch branch;         /* NORM: whose running statistics; AFFINE: passport gamma/beta or learned */
    float *mean, *rstd;       /* NORM: statistics written (ip_norm_stats floats each) */
    float *work;              /* CONV: workspace, ip_conv_workspace_floats of the shape with n samples */
    int direct_conv;          /* CONV: 1 = conv2d_direct_forward where applicable, 0 = always conv2d_forward */
    uint32_t *argmax;         /* POOL: argmax indices written */
} ip_op_io;

/* Forward of one op (any kind) on io's buffers. An AFFINE op applies its
 * learned gamma/beta, or on a passport layer (v1, or the private branch) the
 * gamma/beta computed now from the model's passport keys (m's passport
 * scratch is written). Fused groups (norm+affine+pool tails) are the callers'. */
void ip_op_forward(ip_model *m, const ip_op *op, const ip_op_io *io);

/* Forward pass on n <= batch samples x (N, C, H, W) row-major. training
 * selects batch statistics (and updates running statistics). Returns the
 * logits (n, classes), valid until the next forward. */
const float *ip_model_forward(ip_model *m, const float *x, int n, int training);
/* An eval-mode forward after which no backward runs (predictions, accuracy,
 * logits): bit for bit ip_model_forward(m, x, n, 0)'s logits, without keeping
 * what only a backward reads (the pools' argmax). A backward after it fills
 * its results with NaN. */
const float *ip_model_infer(ip_model *m, const float *x, int n);
/* The forward pass as far as activation act (0 = the input): the ops up to
 * the one producing it, the same arithmetic as ip_model_forward's, whose
 * later activations and logits are left stale. For readers of an
 * intermediate activation (passport keys from a reference model); no
 * backward may follow it. */
void ip_model_forward_to(ip_model *m, const float *x, int n, int training, int act);
/* Backward pass for the last forward, given dlogits (n, classes): accumulates
 * parameter gradients into m->grads (caller zeroes them), adds the sign loss
 * gradient when m->sign_loss_scale > 0 and the private branch ran, and
 * accumulates the input gradient into dx (N, C, H, W) when dx is not NULL.
 * Allocates the activation gradients when ip_model_plan_backward did not; if
 * that fails, m->grads and dx are filled with NaN (a failure nobody can miss). */
void ip_model_backward(ip_model *m, const float *dlogits, float *dx);
/* The input gradient alone: dx (N, C, H, W) += dL/dx, bit for bit the dx of
 * ip_model_backward, without any parameter gradient (no weight GEMM, no
 * gamma/beta reduction, no sign loss; m->grads untouched): about half the
 * backward's work, for the attacks on inputs (fingerprints, PGD). */
void ip_model_backward_input(ip_model *m, const float *dlogits, float *dx);
/* Sign loss over the passport layers for the gammas of the last forward
 * (unscaled: alpha * sum relu(gamma0 - b*g) + l2 * sum g^2, summed over layers). */
double ip_model_sign_loss(const ip_model *m);
/* Signature detection rate of passport layer p (or the mean over layers for p < 0)
 * from the gammas of the last private-branch forward (or computed now if none ran). */
double ip_model_detect(ip_model *m, int p);
/* The running statistics a batch-norm op uses on branch br (NULL, NULL for group norm). */
void ip_model_norm_running(ip_model *m, const ip_op *op, ip_branch br, float **mean, float **var);
/* Computes the passport-derived gamma/beta of every passport layer from the current weights. */
void ip_model_passport_affine(ip_model *m);

void ip_model_zero_grad(ip_model *m);
int ip_model_find_tensor(const ip_model *m, const char *name);
/* Floating-point operations of one forward pass per sample (multiply-add = 2). */
double ip_model_flops_per_sample(const ip_model *m);
/* Those of ip_model_forward_to(act)'s ops. */
double ip_model_flops_to(const ip_model *m, int act);
/* The op that writes activation a, or -1 (the input). Defined with the
 * other facts of the op list, core/model/graph.c. */
int ip_model_producer(const ip_model *m, int a);

/* Names of every supported architecture, NULL-terminated. */
extern const char *const ip_arch_names[];

/* The values of tensor t: its parameters, or its buffers (running statistics). */
static inline float *ip_tensor_param(const ip_model *m, int t) { return m->params + m->tensors[t].offset; }
static inline float *ip_tensor_buf(const ip_model *m, int t) { return m->bufs + m->tensors[t].offset; }

#endif
