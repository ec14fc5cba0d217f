/* Attacks on passport-protected models (REFERENCE.md section 1) and the
 * post-processed copies IPGuard uses as positive suspects (section 2):
 * fine-tuning (FTLL/FTAL/RTLL/RTAL), sign flipping, and the ambiguity
 * attacks fake2 (learn gamma/beta or passports with the weights frozen) and
 * fake3 (insider: perturb the real passports towards another signature).
 * docs/attacks.md defines every choice (data splits, branches, batch-norm
 * mode, initialisations, metrics). Task code like core/tasks.h: each task
 * loads a checkpoint, runs, and fills an ip_metrics; everything random is
 * drawn from counter-based streams of the task's seed. */
#ifndef IP_ATTACKS_H
#define IP_ATTACKS_H

#include <stddef.h>
#include <stdint.h>

#include "data.h"
#include "err.h"
#include "layers.h"
#include "metrics.h"
#include "model.h"
#include "optim.h"

/* ---------------- building blocks (used by the tasks, exposed for tests) ---------------- */

/* Copies every passport layer's passport-derived gamma/beta (from the current
 * conv weights and passport keys) into its learned affine tensors
 * "<block>.norm.weight/bias" and selects the branch that uses them: a v1
 * model becomes cfg.scheme = v2 (the learned affine is then honoured by the
 * public branch; the passports, signatures and private branch stay intact),
 * and m->branch = public. The model then computes exactly what it computed
 * with its passports. Baseline models are left unchanged. */
void ip_attack_passport_to_affine(ip_model *m);

/* Adjoint of ip_conv_colmean: dpassport (Cin, H, W) += d colmean^T dcolmean (K),
 * i.e. every passport entry receives dcolmean[k] / (OH*OW) once for each output
 * position at which it enters column k of im2col. */
void ip_colmean_backward(float *dpassport, const float *dcolmean, const ip_conv_shape *s);

/* dL/dP for passport layer p after an ip_model_backward of a private-branch
 * forward (which leaves dL/dgamma, dL/dbeta in the layer's dgamma/dbeta):
 * dL/dcolmean = W^T dgamma (and W^T dbeta), scattered back through the
 * colmean. ACCUMULATES into dkey_gamma and dkey_beta (each of the key's
 * numel). scratch: K = Cin*KH*KW floats. */
void ip_passport_key_grads(const ip_model *m, int p, float *dkey_gamma, float *dkey_beta, float *scratch);

/* The attacker's training samples (normalisation is left to the caller).
 * With owner_limit L (0 = the whole training split, size N):
 *   count = max(1, round(fraction * L_eff)), L_eff = L ? min(L, N) : N;
 *   disjoint = 0: samples [0, count) (a part of the owner's training data);
 *   disjoint = 1: samples [L, L + count) (data the owner never saw; needs
 *                 L > 0 and L + count <= N, else a clear error). */
int ip_attack_train_data(ip_dataset *d, const char *source, size_t owner_limit, double fraction, int disjoint,
                         ip_err *e);

/* Number of channels a fraction selects out of c: floor(fraction * c + 1e-9). */
int ip_attack_count(double fraction, int c);

/* ---------------- fine-tuning ---------------- */

typedef enum { IP_FT_FTLL = 0, IP_FT_FTAL = 1, IP_FT_RTLL = 2, IP_FT_RTAL = 3 } ip_ft_mode;
const char *ip_ft_mode_name(ip_ft_mode m);
int ip_ft_mode_parse(const char *s, ip_ft_mode *out);

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
    char out[1024];           /* fine-tuned checkpoint ("" = do not save) */
} ip_finetune_task;

void ip_finetune_task_defaults(ip_finetune_task *t);
/* Metrics: test_acc (deployed network), owner_test_acc (before the attack),
 * train_samples; passport models also detect and private_acc. Arrays per
 * epoch: epoch_test_acc (+ epoch_detect, epoch_private_acc). */
int ip_task_finetune(const ip_finetune_task *t, ip_metrics *out, ip_err *e);

/* ---------------- sign flip ---------------- */

typedef struct ip_flip_task {
    char model_path[1024];
    char data[1024];
    size_t test_limit;
    double fraction;          /* [0, 1] of the channels of every passport layer */
    int batch;                /* evaluation batch */
    uint64_t seed;            /* which channels */
} ip_flip_task;

void ip_flip_task_defaults(ip_flip_task *t);
/* Metrics: test_acc, flipped, channels; passport models also detect. */
int ip_task_flip(const ip_flip_task *t, ip_metrics *out, ip_err *e);

/* ---------------- fake2: forge gamma/beta or passports with the weights frozen ---------------- */

typedef enum { IP_FAKE2_AFFINE = 0, IP_FAKE2_PASSPORT = 1 } ip_fake2_target;

typedef struct ip_fake2_task {
    char model_path[1024];
    char data[1024];
    size_t train_limit, test_limit;
    ip_fake2_target target;
    double fraction;          /* (0, 1] of the owner's training data */
    double init_flip;         /* affine: fraction of the true gamma signs flipped in the init (0.5) */
    int epochs, batch;
    ip_optim_cfg opt;         /* SGD lr 0.01 momentum 0.9 wd 5e-4 */
    uint64_t seed;
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
} ip_fake3_task;

void ip_fake3_task_defaults(ip_fake3_task *t);
/* Metrics: test_acc, detect_target, detect (vs the owner's signature),
 * cosine (mean cosine similarity of fake and real key tensors), owner_test_acc,
 * target_flipped, train_samples; arrays epoch_test_acc, epoch_detect_target,
 * epoch_detect, epoch_cosine. */
int ip_task_fake3(const ip_fake3_task *t, ip_metrics *out, ip_err *e);

#endif
