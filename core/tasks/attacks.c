/* The attack kinds finetune, flip, fake2 and fake3 (core/attacks.h,
 * docs/attacks.md): their parameter tables. */
#include "../attacks.h"
#include "param.h"

/* The RNG seed of an attack derives from the task's key; `seed` only names a repetition. */
#define SEED_KEY                                                                                                  \
    P_NAME_INT("seed", 1, 0, 2147483647,                                                                          \
               "repetition: sweep it to repeat the attack with other random draws (the RNG seed derives from the task key)")
#define LR_KEY(S) P_FLOAT(S, "lr", IP_F_FLOAT, opt.lr, 0.01, 1e-9, 10, "SGD learning rate (momentum 0.9, weight decay 5e-4)")
#define BATCH_KEY(S) P_INT(S, "batch", IP_F_INT, batch, 64, 1, 65536, "minibatch size (also the evaluation batch)")
#define EPOCHS_KEY(S, doc) P_INT(S, "epochs", IP_F_INT, epochs, 2, 0, 100000, doc)

/* the optimiser's constants no key sets: SGD, momentum 0.9, weight decay 5e-4 */
#define OPT_INIT(name, S)                     \
    static void name(void *p) {               \
        ip_optim_defaults(&((S *)p)->opt, IP_OPT_SGD); \
    }

/* ---------------- finetune ---------------- */

#define T ip_finetune_task
static const ip_param finetune_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the model to fine-tune"),
    P_ENUM(T, "mode", mode, "rtal", "ftll|ftal|rtll|rtal", NULL,
           "fine-tune last layer / all layers; re-initialise the last layer and train it / train all"),
    P_FLOAT(T, "fraction", IP_F_DOUBLE, fraction, 1, 1e-9, 1,
            "attacker's training samples as a fraction of the owner's training set size (data.train_limit)"),
    P_BOOL(T, "disjoint", disjoint, false,
           "use the training samples after the owner's data.train_limit (data the owner never saw)"),
    EPOCHS_KEY(T, "fine-tuning epochs"),
    LR_KEY(T),
    BATCH_KEY(T),
    SEED_KEY,
};
_Static_assert(IP_FT_FTLL == 0 && IP_FT_FTAL == 1 && IP_FT_RTLL == 2 && IP_FT_RTAL == 3, "choices in enum order");
OPT_INIT(finetune_init, T)
static int finetune_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_finetune(t, out, e); }
const ip_task_def ip_finetune_def = {
    "finetune", "fine-tuning attack / IPGuard suspect (FTLL, FTAL, RTLL, RTAL); docs/attacks.md", finetune_params,
    (int)(sizeof finetune_params / sizeof *finetune_params), sizeof(T), finetune_init, offsetof(T, data),
    offsetof(T, train_limit), offsetof(T, test_limit), offsetof(T, out), {offsetof(T, seed), IP_NO_FIELD}, NULL,
    finetune_run};
#undef T

/* ---------------- flip ---------------- */

#define T ip_flip_task
static const ip_param flip_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the model whose gamma signs are flipped"),
    P_FLOAT(T, "fraction", IP_F_DOUBLE, fraction, 0.5, 0, 1, "fraction of the channels of every passport layer flipped"),
    P_INT(T, "batch", IP_F_INT, batch, 256, 1, 65536, "evaluation batch"),
    SEED_KEY,
};
static int flip_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_flip(t, out, e); }
const ip_task_def ip_flip_def = {"flip", "flip the signs of a fraction of the passport gammas, then evaluate",
                                 flip_params, (int)(sizeof flip_params / sizeof *flip_params), sizeof(T), NULL,
                                 offsetof(T, data), IP_NO_FIELD, offsetof(T, test_limit), IP_NO_FIELD,
                                 {offsetof(T, seed), IP_NO_FIELD}, NULL, flip_run};
#undef T

/* ---------------- fake2 ---------------- */

#define T ip_fake2_task
static const ip_param fake2_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL, "the passport model to forge a passport for"),
    P_ENUM(T, "target", target, "affine", "affine|passport", NULL,
           "learn gamma/beta of the passport layers directly, or the passport tensors"),
    P_FLOAT(T, "fraction", IP_F_DOUBLE, fraction, 1, 1e-9, 1, "fraction of the owner's training data the attacker has"),
    P_FLOAT(T, "init_flip", IP_F_DOUBLE, init_flip, 0.5, 0, 1,
            "affine: fraction of the true gamma signs flipped in the initial gamma (= sign x 0.5)"),
    EPOCHS_KEY(T, "training epochs"),
    LR_KEY(T),
    BATCH_KEY(T),
    SEED_KEY,
};
_Static_assert(IP_FAKE2_AFFINE == 0 && IP_FAKE2_PASSPORT == 1, "choices in enum order");
OPT_INIT(fake2_init, T)
static int fake2_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_fake2(t, out, e); }
const ip_task_def ip_fake2_def = {"fake2", "ambiguity attack: forge gamma/beta or passports with the weights frozen",
                                  fake2_params, (int)(sizeof fake2_params / sizeof *fake2_params), sizeof(T),
                                  fake2_init, offsetof(T, data), offsetof(T, train_limit), offsetof(T, test_limit),
                                  IP_NO_FIELD, {offsetof(T, seed), IP_NO_FIELD}, NULL, fake2_run};
#undef T

/* ---------------- fake3 ---------------- */

#define T ip_fake3_task
static const ip_param fake3_params[] = {
    P_REF(T, "model", IP_P_MODEL, model_path, NULL,
          "the passport model (the insider has its weights, data, passports and signature)"),
    P_FLOAT(T, "flip_fraction", IP_F_DOUBLE, flip_fraction, 0, 0, 1,
            "fraction of the owner's signature bits (per layer) flipped to form the target signature"),
    P_FLOAT(T, "fraction", IP_F_DOUBLE, fraction, 1, 1e-9, 1, "fraction of the owner's training data used"),
    P_FLOAT(T, "push_weight", IP_F_DOUBLE, push_weight, 1, 0, 1e9,
            "weight of the push-away term sum 1/MSE(fake, real passport)"),
    EPOCHS_KEY(T, "training epochs"),
    LR_KEY(T),
    BATCH_KEY(T),
    SEED_KEY,
};
static void fake3_init(void *p) {
    T *t = p;
    ip_optim_defaults(&t->opt, IP_OPT_SGD);
    t->noise_std = 0.001; /* not keys (docs/attacks.md) */
    t->clip_norm = 2;
}
static int fake3_run(const void *t, ip_metrics *out, ip_err *e) { return ip_task_fake3(t, out, e); }
const ip_task_def ip_fake3_def = {"fake3", "insider ambiguity attack: push the real passports towards another signature",
                                  fake3_params, (int)(sizeof fake3_params / sizeof *fake3_params), sizeof(T),
                                  fake3_init, offsetof(T, data), offsetof(T, train_limit), offsetof(T, test_limit),
                                  IP_NO_FIELD, {offsetof(T, seed), IP_NO_FIELD}, NULL, fake3_run};
#undef T
