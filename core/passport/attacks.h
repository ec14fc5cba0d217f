/* Attacks on passport-protected models (REFERENCE.md section 1) and the
 * post-processed copies IPGuard uses as positive suspects (section 2):
 * fine-tuning (FTLL/FTAL/RTLL/RTAL), sign flipping, and the ambiguity
 * attacks fake2 (learn gamma/beta or passports with the weights frozen) and
 * fake3 (insider: perturb the real passports towards another signature).
 * docs/attacks.md defines every choice (data splits, branches, batch-norm
 * mode, initialisations, metrics). Task code like core/tasks/tasks.h: each task
 * loads a checkpoint, runs, and fills an ip_metrics; everything random is
 * drawn from counter-based streams of the task's seed. */
#ifndef IP_ATTACKS_H
#define IP_ATTACKS_H

#include <stddef.h>
#include <stdint.h>

#include "../io/data.h"
#include "../util/err.h"
#include "../nn/layers.h"
#include "../util/metrics.h"
#include "../model/model.h"
#include "../nn/optim.h"

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

/* The fine-tuning modes of the attacks (docs/attacks.md). */
typedef enum { IP_FT_FTLL = 0, IP_FT_FTAL = 1, IP_FT_RTLL = 2, IP_FT_RTAL = 3 } ip_ft_mode;
const char *ip_ft_mode_name(ip_ft_mode m);
int ip_ft_mode_parse(const char *s, ip_ft_mode *out);

/* What fake2 forges: the affine gamma/beta, or the passports. */
typedef enum { IP_FAKE2_AFFINE = 0, IP_FAKE2_PASSPORT = 1 } ip_fake2_target;

#endif
