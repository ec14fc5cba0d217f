/* Cost estimates of the kinds (seconds on one core, for --dry-run,
 * longest-first scheduling and the progress ETA): one model of the core's
 * speed for all of them (docs/performance.md "Cost model").
 *
 * A task costs its images through its models at the measured speed of each
 * model's architecture (rn_arch_speed: one row per architecture, measured
 * with `ipsweep bench train --threads 1`), plus RN_TASK_FIXED_SECONDS of
 * loading and writing. A task that names a model finds that model's
 * architecture through its dependencies (rn_model_arch). scripts/cost-check.py
 * compares the estimates with a finished run. */
#ifndef RN_KINDS_COST_H
#define RN_KINDS_COST_H

#include "kinds.h"

typedef struct rn_arch_speed {
    const char *arch;
    double mflop;         /* forward MFLOP per image (ip_model_flops_per_sample; tests/test_sizing.c ties them) */
    double key_mflop;     /* of it, a passport key's reference forward: as far as the last input of v1's
                           * passport layers (core/passport/passport_keys.c; tests/test_sizing.c ties them) */
    double key_floats;    /* floats per image of the activations v1's keys read: an image's share of the
                           * shuffle keys' feature cache (ip_keygen.cache_floats; tests/test_sizing.c ties them) */
    double train_per_s;   /* training images per second on one core (forward, backward, update) */
    double infer_per_s;   /* evaluation images per second on one core */
} rn_arch_speed;

/* The row of an architecture; an unknown name gets small-p's. */
const rn_arch_speed *rn_arch(const char *arch);
/* The rows, in table order (row 0 is small-p, the default): how many, the i-th. */
int rn_arch_rows(void);
const rn_arch_speed *rn_arch_row(int i);
/* The index of rn_arch(arch)'s row. */
int rn_arch_index(const char *arch);

/* The speeds `run --calibrate` measures of an architecture: training and
 * evaluation images/s (minibatches of RN_ROW_BATCH), the forger's
 * passport-images/s, and training images/s in minibatches of
 * RN_SMALL_BATCH (with the first, a step's fixed part: rn_batch_factor). */
enum { RN_SPEED_TRAIN, RN_SPEED_INFER, RN_SPEED_FORGE, RN_SPEED_TRAIN_SMALL, RN_SPEEDS };
enum { RN_ROW_BATCH = 64, RN_SMALL_BATCH = 16 };

/* A training step's fixed part on the rows' machine, in images: a minibatch
 * of b images takes as long as b + RN_STEP_IMAGES would without it (batch
 * 16 ~1.26x the time per image of batch 64). It differs by machine: on an
 * AMD Zen 3, small-p trained as fast per image in minibatches of 16 as of 64
 * (docs/performance.md "Cost model"). */
#define RN_STEP_IMAGES 6.0

/* A passport-image through the forger (core/passport/forge.h: one fake
 * passport on one image, through the layers after the first passport layer,
 * batched over a block of fakes) costs RN_FORGE_IMAGE_COST evaluation images
 * on the rows' machine: measured on small-p, the quick study's full-mode
 * fake1, 2,000,000 passport-images in 80 s (2026-12-06, passes of
 * IP_FORGE_VIRTUAL_BATCH_DEFAULT). The row's forger speed is its evaluation
 * speed / RN_FORGE_IMAGE_COST. */
#define RN_FORGE_IMAGE_COST 0.29

/* The rows are one machine's speeds (an AVX-512 machine of 2026). `run
 * --calibrate` (runner/bench/calibrate.c) measures an architecture's speeds
 * (speed[RN_SPEEDS]) on the machine at hand; from then on each of its row's
 * speeds is multiplied by measured / row, that speed's factor. Each is 1
 * until set; a speed <= 0 sets its factor back to 1. factor (optional) gets
 * the factors. They differ by machine: on an AMD Zen 3 small-p evaluated at
 * 0.60x its row and forged at 0.52x (docs/performance.md "Cost model"). */
void rn_cost_set_measured_speed(const char *arch, const double speed[RN_SPEEDS], double factor[RN_SPEEDS]);
/* The row's speed of kind `which` (RN_SPEED_*) on the rows' machine. */
double rn_row_speed(const rn_arch_speed *row, int which);
/* Forward MFLOP per image of an architecture (its row's mflop). */
double rn_arch_mflop(const char *arch);

/* The architecture of the model a task's model-valued key `param` ("model",
 * "suspect", "reference") names: the training task behind it, followed
 * through the tasks that derive a model from another (prune, finetune, ...);
 * a student of its own `arch` (distill, extract) counts as that. small-p
 * when it cannot be known (c->tasks unset, a checkpoint from outside). */
const char *rn_model_arch(const rn_task *t, const rn_ctx *c, const char *param);
/* The passport scheme ("baseline", "v1", "v2", "v3") of the model t's key
 * `param` names, through the same chain: the first task on it with an `arch`
 * key decides (a training, its scheme; a student of distill or extract, a
 * baseline); "baseline" when it cannot be known. */
const char *rn_model_scheme(const rn_task *t, const rn_ctx *c, const char *param);
/* The norm ("bn", "gn") of the model t's key `param` names, through the
 * same chain (a student's is its teacher's); "" when it cannot be known. */
const char *rn_model_norm(const rn_task *t, const rn_ctx *c, const char *param);
/* 1 when t trains or works on a group-norm model (its own `norm`, or that
 * of the model its `model` or `suspect` names). The rows are batch norm's
 * and a task's cost does not look at the norm: on an AVX2 machine small-p
 * group-norm trainings took 1.03-1.17x their batch-norm twins' time with
 * the fused group-norm tail (1.1-1.4x before it; docs/performance.md "Cost
 * model"). */
int rn_task_group_norm(const rn_task *t, const rn_ctx *c);
/* Test-split evaluations of a model by the tasks that report the accuracy
 * of every branch it has (prune, eval: core/tasks/models.c
 * passport_metrics): 2 for v2/v3 (the private and the public branch), else 1. */
double rn_model_branches(const rn_task *t, const rn_ctx *c, const char *param);
/* The task among t's dependencies that writes the file its key `param`
 * ("fingerprint", "model", ...) names, or NULL (outside the spec, c->tasks unset). */
const rn_task *rn_producer(const rn_task *t, const rn_ctx *c, const char *param);

/* 1 when the checkpoint t's key `param` names carries the accuracy t would
 * compute on the test split (core/model/evalrec.h): its producer is a task
 * of the spec (every kind that writes a model evaluates what it saves) and
 * its architecture evaluates in passes of a fixed size (a small model:
 * IP_INFER_SMALL_MFLOP), so the record fits whatever batch t asks for. Then
 * the evaluation costs nothing (with the records on, the default). */
int rn_accuracy_recorded(const rn_task *t, const rn_ctx *c, const char *param);
/* Seconds of the test-split accuracy of the model t's key `param` names,
 * taken before an attack or a distillation changes anything: nothing when
 * the checkpoint's records answer it (rn_accuracy_recorded), unless
 * `deployed` asks for the network as deployed and the model is a v1, whose
 * passports then become an ordinary affine first
 * (ip_attack_passport_to_affine: finetune, advtrain), weights that no record
 * was made of. */
double rn_owner_eval_seconds(const rn_task *t, const rn_ctx *c, const char *param, int deployed);

/* Seconds for `images` images of training (forward, backward, update) / of
 * evaluation through a model of `arch`. `passes` scales the training cost
 * (2: a v2/v3 model trains two branches; PGD: its steps' forwards and
 * backwards to the input count as passes). */
double rn_train_seconds(const char *arch, double images, double passes);
/* The time per training image of an `arch` in minibatches of `batch`
 * against minibatches of RN_ROW_BATCH: (batch + k) / batch over (64 + k) /
 * 64, where k is a step's fixed part in images, RN_STEP_IMAGES or, once
 * calibrated, what the arch's two training speeds give (at least 0).
 * Multiplies `passes`. */
double rn_batch_factor(const char *arch, double batch);
/* rn_batch_factor of t's own `batch` key, for a model of `arch`. */
double rn_task_batch_factor(const rn_task *t, const char *arch);
double rn_infer_seconds(const char *arch, double images);
/* Seconds for `passport_images` passport-images through the forger of a model of `arch`. */
double rn_forge_seconds(const char *arch, double passport_images);

/* A forward and a backward to the input alone (ip_model_backward_input: a
 * fingerprint iteration, a PGD step), in training images: measured 0.8-0.87
 * on the quick study's fingerprints and adversarial training. */
#define RN_INPUT_GRAD_PASS 0.8

/* A task's fixed part: reading its inputs (with the worker's cache), writing its outputs. */
#define RN_TASK_FIXED_SECONDS 0.05

/* Images of a split the task sees (its limit, or 50,000 / 10,000). */
double rn_data_images(const rn_ctx *c, int train);

/* Typed values of a task by key name (0 / "" when the kind has no such key). */
long rn_val_i(const rn_task *t, const char *name);
double rn_val_f(const rn_task *t, const char *name);
const char *rn_val_text(const rn_task *t, const char *name);

#endif
