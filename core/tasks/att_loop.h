/* The attack kinds' shared training loop and plumbing (core/tasks/attacks.c),
 * for the task files of the attacks (attacks.c, ambiguity.c): not a public
 * API of the core. */
#ifndef IP_ATT_LOOP_H
#define IP_ATT_LOOP_H

#include "../io/data.h"
#include "../io/resume.h"
#include "../model/model.h"
#include "../nn/optim.h"
#include "../util/err.h"
#include "../util/metrics.h"
#include "param.h"

/* The RNG seed of an attack derives from the task's key; `seed` only names a repetition. */
#define SEED_KEY                                                                                                  \
    P_NAME_INT("seed", 1, 0, 2147483647,                                                                          \
               "repetition: sweep it to repeat the attack with other random draws (the RNG seed derives from the task key)")

/* The attack's training loop: minibatches of the attacker's data, cross
 * entropy (+ the model's sign loss when m->sign_loss_scale > 0), then an
 * optimiser step on one of:
 *   - the model's trainable tensors (keys == NULL);
 *   - the passport keys (keys != NULL, vec_apply == NULL: flat vector, with
 *     the optional push-away term and gradient clipping of fake3);
 *   - a vector of the task's own (vec_apply != NULL: keys holds nvec floats;
 *     after each backward vec_grad fills their gradient, which it may add a
 *     term to and returns that term's loss; vec_apply then writes what the
 *     vector defines into the model, as it must before the loop starts). */
typedef struct att_loop att_loop;
struct att_loop {
    ip_model *m;
    const ip_dataset *train;
    int epochs, batch, training;
    uint64_t seed;
    ip_optim_cfg opt;
    float *keys;              /* learn the passport keys (NULL: learn the trainable parameters) */
    const float *keys0;       /* fake3: the true keys (push-away reference) */
    double push_weight, clip_norm;
    int (*epoch_end)(att_loop *l, int epoch, ip_err *e);
    void *user;
    ip_saver *sv;             /* checkpoints (io/resume.h; NULL: none) */
    ip_metrics *out;          /* the task's metrics so far, saved with the state */
    size_t nvec;              /* vec_apply: floats in keys */
    void (*vec_apply)(att_loop *l);
    double (*vec_grad)(att_loop *l, float *dvec);
};

int ip_att_run_loop(att_loop *l, ip_err *e);

/* Opens the model, loads the test split and (when train_fraction > 0) the
 * attacker's training samples, normalised as the model expects; plans batch. */
int ip_att_setup(ip_model *m, ip_dataset *train, ip_dataset *test, const char *model_path, const char *data,
                 size_t train_limit, size_t test_limit, double train_fraction, int disjoint, int batch, ip_err *e);
/* Appends v to the array `name` and sets the scalar `name without "epoch_"` (the final value). */
int ip_att_record(ip_metrics *out, const char *array, double v, ip_err *e);
void ip_att_set_all_trainable(ip_model *m, int v);
/* A clear error unless m has passport layers. */
int ip_att_require_passports(const ip_model *m, const char *attack, ip_err *e);

#endif
