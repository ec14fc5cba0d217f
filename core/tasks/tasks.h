/* Task code: what one unit of work does, independent of who schedules it.
 * `ipsweep task`/`train`/`eval` call these directly; the runner's workers
 * call the same functions for the spec's tasks. Each fills an ip_metrics.
 * One struct per kind; its fields are set by the kind's parameter table
 * (param.h, the files of this folder) and ip_task_defaults. */
#ifndef IP_TASKS_H
#define IP_TASKS_H

#include <stdint.h>

#include "../util/err.h"
#include "../util/metrics.h"
#include "../model/model.h"
#include "../model/train.h"
#include "../ipguard/fingerprint.h"
#include "../passport/attacks.h"
#include "../passport/erb.h"
#include "../passport/forge.h"
#include "param.h"

typedef struct ip_train_task {
    ip_model_cfg model;      /* arch, norm, scheme, passport_layers; input shape/classes come from the data */
    char data[1024];         /* data source, "kind:path" (data.h) */
    size_t train_limit, test_limit; /* 0 = all */
    ip_train_cfg train;
    uint64_t seed;           /* model init, shuffling, augmentation; never the data (data.h: a
                              * spec's data are the same for every task) */
    char signature[1024];    /* text embedded in every passport layer ("" = random bits; its capacity: core/tasks/train.c) */
    size_t triggers;         /* v3: trigger set size (core/passport/trigger.h), generated from seed */
    int key_type;            /* the owner's passports: an ip_key_type (core/passport/passport_keys.h) */
    char out[1024];          /* checkpoint path ("" = do not save) */
    ip_resume resume;        /* its state file while it runs (io/resume.h) */
} ip_train_task;
/* The protocol (`protocol` key) is model.protocol: the model and its checkpoint keep it. */

void ip_train_task_defaults(ip_train_task *t);
/* The weight decay t trains with: train.opt.weight_decay, or where it is the
 * row's "auto" (-1) the protocol's (docs/spec.md, train's weight_decay). */
float ip_train_task_weight_decay(const ip_train_task *t);
/* Loads the data, builds and initialises the model, trains, evaluates, saves
 * the checkpoint atomically. Metrics (deterministic: wall time is the
 * runner's business): test_acc, train_loss, params, weight_decay_used, and for passport models detect, detect_<layer> per
 * passport layer (+ public_test_acc for v2/v3, trigger_acc and trigger_acc_private for v3); arrays
 * epoch_test_acc, epoch_train_loss. */
int ip_task_train(const ip_train_task *t, ip_metrics *out, ip_err *e);

/* Opens a checkpoint and loads the test split of `data` normalised as the
 * model expects. The task codes' common first step; on failure the caller
 * frees m and test as usual. */
int ip_task_open(ip_model *m, ip_dataset *test, const char *model_path, const char *data, size_t test_limit,
                 ip_err *e);

typedef struct ip_eval_task {
    char model_path[1024];
    char data[1024];
    size_t test_limit;
    int batch;
    int branch;              /* -1 = default (private for passport models) */
    char predictions[1024];  /* "" or a file to write one predicted label per line */
} ip_eval_task;

void ip_eval_task_defaults(ip_eval_task *t);
/* Metrics: test_acc, n, and for passport models detect, detect_<layer>, public_test_acc (v2/v3),
 * trigger_acc, trigger_acc_private (v3). */
int ip_task_eval(const ip_eval_task *t, ip_metrics *out, ip_err *e);

typedef struct ip_prune_task {
    char model_path[1024];
    char data[1024];
    size_t test_limit;
    double rate;
    int protocol;            /* ip_protocol: paper = ip_prune_global; deepipr-code = ip_prune_percentile and
                              * test_acc of the public branch (docs/attacks.md "prune") */
    char out[1024];          /* pruned checkpoint ("" = do not save) */
} ip_prune_task;

/* Loads the model, prunes (core/model/prune.h), evaluates. Metrics: rate, pruned,
 * test_acc, and for passport models detect, detect_<layer> (+ public_test_acc for v2/v3, trigger_acc and
 * trigger_acc_private for v3; under deepipr-code private_test_acc for v2/v3). */
int ip_task_prune(const ip_prune_task *t, ip_metrics *out, ip_err *e);

/* ---------------- attacks (docs/attacks.md) ---------------- */

/* fine-tuning */


typedef struct ip_finetune_task {
    char model_path[1024];
    char data[1024];          /* the owner's data source ("kind:path") */
    size_t train_limit;       /* the owner's training limit (0 = whole split): defines the attacker's split */
    size_t test_limit;
    ip_ft_mode mode;
    double fraction;          /* (0, 1]: attacker's samples relative to the owner's training set */
    int disjoint;             /* use samples the owner did not train on (ip_attack_train_data) */
    int epochs, batch;
    ip_optim_cfg opt;         /* SGD lr 0.01 momentum 0.9 wd 5e-4 */
    uint64_t seed;            /* shuffling and re-initialisation */
    int protocol;             /* ip_protocol: which detection is `detect` (docs/attacks.md "finetune") */
    char out[1024];           /* fine-tuned checkpoint ("" = do not save) */
    ip_resume resume;         /* its state file while it runs (io/resume.h) */
} ip_finetune_task;

void ip_finetune_task_defaults(ip_finetune_task *t);
/* Metrics: test_acc (deployed network), owner_test_acc (before the attack),
 * train_samples; passport models also detect, detect_passport, detect_scale
 * and private_acc. Arrays per epoch: epoch_test_acc (+ epoch_detect,
 * epoch_detect_passport, epoch_detect_scale, epoch_private_acc). */
int ip_task_finetune(const ip_finetune_task *t, ip_metrics *out, ip_err *e);

/* ---------------- sign flip ---------------- */

typedef struct ip_flip_task {
    char model_path[1024];
    char data[1024];
    size_t test_limit;
    double fraction;          /* [0, 1] of the channels of every passport layer */
    int batch;                /* evaluation batch */
    uint64_t seed;            /* which channels */
    int protocol;             /* ip_protocol: paper = per layer, detect from the flipped gammas;
                               * deepipr-code = across layers, detect from the passport gammas */
} ip_flip_task;

void ip_flip_task_defaults(ip_flip_task *t);
/* Metrics: test_acc, flipped, channels; passport models also detect, detect_scale (the flipped
 * gammas' signs) and detect_passport (the passport gammas'). */
int ip_task_flip(const ip_flip_task *t, ip_metrics *out, ip_err *e);

/* ---------------- fake2: forge gamma/beta or passports with the weights frozen ---------------- */


typedef struct ip_fake2_task {
    char model_path[1024];
    char data[1024];
    size_t train_limit, test_limit;
    ip_fake2_target target;
    double fraction;          /* (0, 1] of the owner's training data */
    double init_flip;         /* affine: fraction of the true gamma signs flipped in the init (0.5) */
    int protocol;             /* ip_protocol: the affine init (docs/attacks.md "fake2") */
    int epochs, batch;
    ip_optim_cfg opt;         /* SGD lr 0.01 momentum 0.9 wd 5e-4 */
    uint64_t seed;
    ip_resume resume;         /* its state file while it runs (io/resume.h) */
} ip_fake2_task;

void ip_fake2_task_defaults(ip_fake2_task *t);
/* Metrics: test_acc, detect (forged gammas vs the owner's signature),
 * init_test_acc, init_detect, owner_test_acc, train_samples; arrays
 * epoch_test_acc, epoch_detect. */
int ip_task_fake2(const ip_fake2_task *t, ip_metrics *out, ip_err *e);

/* ---------------- fake3: insider forging from the real passports ---------------- */

typedef struct ip_fake3_task {
    char model_path[1024];
    char data[1024];
    size_t train_limit, test_limit;
    double fraction;          /* (0, 1] of the owner's training data */
    double flip_fraction;     /* [0, 1] of the owner's bits flipped (per layer) to form the target signature */
    double push_weight;       /* weight of sum over key tensors of 1/MSE(P_fake, P_true) (1) */
    double noise_std;         /* initial N(0, noise_std) perturbation (0.001) */
    double clip_norm;         /* total gradient norm clip over the fake passports (2; 0 = none) */
    int epochs, batch;
    ip_optim_cfg opt;         /* SGD lr 0.01 momentum 0.9 wd 5e-4 */
    uint64_t seed;
    ip_resume resume;         /* its state file while it runs (io/resume.h) */
} ip_fake3_task;

void ip_fake3_task_defaults(ip_fake3_task *t);
/* Metrics: test_acc, detect_target, detect (vs the owner's signature),
 * cosine (mean cosine similarity of fake and real key tensors), owner_test_acc,
 * target_flipped, train_samples; arrays epoch_test_acc, epoch_detect_target,
 * epoch_detect, epoch_cosine. */
int ip_task_fake3(const ip_fake3_task *t, ip_metrics *out, ip_err *e);

/* ---------------- erb: the ERB ambiguity attack (Chen et al., CVPR 2023) ---------------- */

/* What signature the forged scale is pushed towards (docs/attacks.md "erb"). */
typedef enum { IP_ERB_TARGET_NONE = 0, IP_ERB_TARGET_FLIP = 1, IP_ERB_TARGET_SIGNATURE = 2 } ip_erb_target;

typedef struct ip_erb_task {
    char model_path[1024];
    char data[1024];
    size_t train_limit, test_limit;
    ip_erb_block block;       /* cerb | ierb | none (the plain attack) */
    double fraction;          /* (0, 1] of the owner's training data */
    ip_erb_target target;
    double flip_fraction;     /* target flip: [0, 1] of the owner's bits flipped per layer */
    char signature[128];      /* target signature: the attacker's text */
    double sign_loss;         /* weight of the sign loss towards the target (0 = none) */
    int epochs, batch;
    ip_optim_cfg opt;
    uint64_t seed;
    ip_resume resume;         /* its state file while it runs (io/resume.h) */
} ip_erb_task;

void ip_erb_task_defaults(ip_erb_task *t);
/* Metrics: real_acc (the owner's passport), init_acc (gamma 1, beta 0),
 * forged_acc, owner_detect (forged scale's signs vs the owner's signature),
 * forged_detect (vs the target; with a target), passport_acc and
 * passport_detect (the minimum-norm passport tensors through the passport
 * path), passport_residual, train_samples (no per-epoch arrays: it
 * evaluates once, after the last epoch). */
int ip_task_erb(const ip_erb_task *t, ip_metrics *out, ip_err *e);

/* ---------------- task code (the runner kinds fake1 and verify) ---------------- */

typedef struct ip_fake1_task {
    char model_path[1024];      /* the attacked model (passport scheme) */
    char reference_path[1024];  /* image/shuffle keys: reference model ("" = none) */
    char data[1024];            /* data source: test split = evaluation images, train split = key images */
    size_t train_limit, test_limit;
    ip_key_type key_type;
    uint64_t passports;         /* N */
    int shard, shards;
    int eval_images;            /* E (clamped to the test split) */
    ip_forge_cfg forge;         /* mode, group, delta, ... */
    uint64_t seed;              /* passport keys and the screen order; NOT the shard's task seed */
    int keep_arrays;            /* report the per-passport arrays (default 1) */
    int protocol;               /* ip_protocol: deepipr-code makes image/shuffle keys as the authors do */
    ip_resume resume;           /* its state file while it runs (io/resume.h) */
} ip_fake1_task;

void ip_fake1_task_defaults(ip_fake1_task *t);
/* Metrics: real_acc, real_detect, threshold, fake_mean, fake_std, fake_min,
 * fake_max, fake_q05/q25/q50/q75/q95, accepted, passports, first, eval_images,
 * detect_mean, detect_max, mean_evaluated, passports_per_s, key_seconds,
 * eval_seconds, the joint criterion and the forgery tail (detect_threshold,
 * accepted_joint, accept_*_frac, acc_detect_corr, p_accept_*, p_joint_cp95,
 * tail_*: docs/passports.md); arrays fake_acc, fake_detect, evaluated (screen mode), hist_counts
 * (20 bins over [0, 1]). */
int ip_task_fake1(const ip_fake1_task *t, ip_metrics *out, ip_err *e);

/* The summary metrics of per-passport results (acc, det, evaluated: n values
 * each, in passport order; evaluated = images seen, E when evaluated in full):
 * everything ip_task_fake1 reports except its timings (first,
 * passports_per_s, key_seconds, eval_seconds, group, chunk), and with
 * keep_arrays the arrays fake_acc, fake_detect, hist_counts and (when any
 * passport was screened out) evaluated. thr: the acceptance threshold of
 * accuracy, det_thr: the joint criterion's one of signature detection. */
int ip_fake1_summarise(const double *acc, const double *det, const double *evd, size_t n, size_t E, double real_acc,
                       double real_det, double thr, double det_thr, int keep_arrays, ip_metrics *out, ip_err *e);

/* Merges the metrics of the shards 0..nparts-1 of one fake1 task (each run
 * with its arrays) into the metrics of the whole task: the arrays
 * concatenated in shard order and summarised as above (so a full-mode run
 * split into shards reports exactly what the unsharded run reports), plus
 * key_seconds/eval_seconds summed over shards, passports_per_s per core
 * second, and `shards`. Fails when the shards disagree on the model's real
 * accuracy, the threshold or E. */
int ip_fake1_merge(const ip_metrics *parts, int nparts, ip_metrics *out, ip_err *e);

typedef struct ip_verify_task {
    ip_fake1_task null;         /* the model, data, and the fake1 run that builds the null distribution */
    char claim_path[1024];      /* checkpoint whose passport keys + signature are the claim ("" = the model's own) */
    /* a null distribution from earlier fake1 tasks (fake_acc, fake_detect arrays);
     * when null_n > 0 no fakes are run */
    const double *null_acc, *null_detect;
    size_t null_n;
} ip_verify_task;

/* Metrics: claim_acc, claim_detect, p_value, null_passports, null_acc_max,
 * null_detect_max, real_acc, claim_accepted. */
int ip_task_verify(const ip_verify_task *t, ip_metrics *out, ip_err *e);

/* ---------------- task code (the runner kinds fingerprint and match) ---------------- */

typedef struct ip_fingerprint_task {
    char model_path[1024];   /* the owner */
    /* method cae: the defender's surrogates and references, paths joined by IP_PATH_SET_SEP (param.h) */
    char surrogates[IP_MAX_MODEL_SET * 1024], references[IP_MAX_MODEL_SET * 1024];
    char data[1024];         /* data source: train split = seeds, test split = owner_acc and the clip range */
    size_t train_limit, test_limit;
    ip_fp_cfg fp;
    char out[1024];          /* the fingerprint file ("" = do not save) */
    ip_resume resume;        /* its state file while it runs (io/resume.h) */
} ip_fingerprint_task;

void ip_fingerprint_task_defaults(ip_fingerprint_task *t);
/* Metrics: points_requested, points (kept), unconverged (seeds that gave no
 * point), iters_mean, iters_max (over all requested points), points_per_s,
 * seconds, owner_acc; arrays iterations and converged (1 = kept, per
 * requested point). Method cae adds surrogates, references (counts),
 * seeds_wrong, not_adversarial, low_score (why seeds gave no point, cae.h)
 * and score_mean, hard_score_mean (the conferrability of the kept points). */
int ip_task_fingerprint(const ip_fingerprint_task *t, ip_metrics *out, ip_err *e);

typedef struct ip_match_task {
    char fingerprint_path[1024];
    char suspect_path[1024];
    char data[1024];         /* test split for suspect_acc */
    size_t test_limit;
    int branch;              /* -1 = default */
} ip_match_task;

/* Metrics: match_rate, points, suspect_acc. */
int ip_task_match(const ip_match_task *t, ip_metrics *out, ip_err *e);

/* ---------------- suspects: distillation (core/tasks/suspects.c, docs/attacks.md) ---------------- */

typedef struct ip_distill_task {
    char model_path[1024];    /* the teacher (the owner) */
    char data[1024];          /* the owner's data source ("kind:path") */
    size_t train_limit;       /* the owner's training limit: defines the attacker's split (ip_attack_train_data) */
    size_t test_limit;
    char arch[32];            /* the student's architecture ("" = the teacher's) */
    double temperature;       /* T > 0 of the softened softmaxes */
    double alpha;             /* [0, 1]: weight of the hard-label cross-entropy (the soft loss gets 1 - alpha) */
    double fraction;          /* (0, 1]: attacker's samples relative to the owner's training set */
    int epochs, batch;
    ip_optim_cfg opt;
    uint64_t seed;            /* the student's initialisation and the sample order */
    char out[1024];           /* the student's checkpoint ("" = do not save) */
    ip_resume resume;         /* its state file while it runs (io/resume.h) */
} ip_distill_task;

void ip_distill_task_defaults(ip_distill_task *t);
/* Trains a fresh baseline student (the teacher's input normalisation and
 * norm kind) on the teacher's softened outputs. Metrics: test_acc (student),
 * teacher_test_acc, agreement (fraction of test images where both predict
 * the same class), train_samples, train_loss; arrays epoch_test_acc,
 * epoch_train_loss. */
int ip_task_distill(const ip_distill_task *t, ip_metrics *out, ip_err *e);

/* ---------------- suspects: label-only model extraction (core/tasks/suspects.c, docs/attacks.md) ---------------- */

/* Where the thief's query images come from (extract's `query_data`, in its choices' order). */
typedef enum { IP_EXTRACT_TRAIN = 0, IP_EXTRACT_NOISE = 1 } ip_extract_source;

typedef struct ip_extract_task {
    char model_path[1024];    /* the owner, queried as deployed */
    char data[1024];          /* the owner's data source ("kind:path") */
    size_t train_limit;       /* the owner's training limit: the pool of query_data train */
    size_t test_limit;
    char arch[32];            /* the student's architecture ("" = the owner's) */
    size_t queries;           /* N >= 1: the query budget, images the owner labels */
    int query_data;           /* ip_extract_source */
    int epochs, batch;
    ip_optim_cfg opt;
    uint64_t seed;            /* the queries drawn, the student's initialisation and the sample order */
    char out[1024];           /* the student's checkpoint ("" = do not save) */
    ip_resume resume;         /* its state file while it runs (io/resume.h) */
} ip_extract_task;

void ip_extract_task_defaults(ip_extract_task *t);
/* Draws N query images (training split or uniform noise), has the owner
 * answer each once with its top-1 class, and trains a fresh baseline student
 * (the owner's input normalisation and norm kind) with cross-entropy on those
 * answers only. Metrics: test_acc (student), teacher_test_acc, agreement,
 * queries, query_label_acc (query_data train: answers equal to the true
 * label), train_loss; arrays epoch_test_acc, epoch_train_loss. A budget
 * beyond the training pool is an input error naming `queries`. */
int ip_task_extract(const ip_extract_task *t, ip_metrics *out, ip_err *e);

/* ---------------- suspects: PGD adversarial fine-tuning (core/tasks/suspects.c) ---------------- */

typedef struct ip_advtrain_task {
    char model_path[1024];    /* the owner */
    char data[1024];
    size_t train_limit, test_limit;
    double eps;               /* L-inf radius, [0, 1] pixel units */
    double alpha;             /* PGD step, pixel units (0 = eps/4) */
    int steps;                /* PGD steps */
    size_t adv_eval;          /* test images attacked for the adversarial accuracies */
    double fraction;          /* (0, 1]: attacker's samples relative to the owner's training set */
    int epochs, batch;
    ip_optim_cfg opt;
    uint64_t seed;            /* the sample order and PGD's random starts */
    char out[1024];           /* the fine-tuned checkpoint ("" = do not save) */
    ip_resume resume;         /* its state file while it runs (io/resume.h) */
} ip_advtrain_task;

void ip_advtrain_task_defaults(ip_advtrain_task *t);
/* Fine-tunes every parameter of the deployed network on PGD examples of
 * the attacker's data. Metrics: test_acc (clean), adv_test_acc (PGD
 * examples of the first adv_eval test images, no random start),
 * owner_test_acc, owner_adv_test_acc (before), adv_eval, train_samples,
 * train_loss; arrays epoch_test_acc, epoch_train_loss. */
int ip_task_advtrain(const ip_advtrain_task *t, ip_metrics *out, ip_err *e);

#endif
