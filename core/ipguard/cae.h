/* Conferrable adversarial examples: the fingerprint of Lukas, Zhang and
 * Kerschbaum, "Deep Neural Network Fingerprinting by Conferrable Adversarial
 * Examples", ICLR 2021 (docs/fingerprint.md "CAE", with every choice the
 * paper leaves open).
 *
 * The defender holds surrogates S (models derived from the owner M, e.g.
 * distilled) and references R (independent models). From a seed x0 that M
 * classifies correctly, Adam on the input minimises, within an L-inf ball of
 * radius eps around x0,
 *
 *     L = alpha * H(1, max_t E_t) - beta * H(M(x0), M(x)) + gamma * H(M(x), A)
 *     A = mean_{s in S} softmax(S(x)),  B = mean_{r in R} softmax(R(x)),
 *     E = A * (1 - B)                               (elementwise, per class)
 *
 * (H(p, q) = -sum p log q, probabilities clipped to [1e-7, 1 - 1e-7] with no
 * gradient where clipped; a random 30% of S and of R sit out each step). The
 * point is kept when M's label t on it differs from the seed's true label
 * and its conferrability score E_t (every model, no dropout) reaches tau;
 * the fingerprint stores it with label t, and a suspect matches a point
 * where it predicts t: CAEAcc, the paper's verification measure, is
 * IPGuard's matching rate on these points. */
#ifndef IP_CAE_H
#define IP_CAE_H

#include "fingerprint.h"

#define IP_CAE_PROB_EPS 1e-7

/* The loss for one point, in double, and its gradients w.r.t. every model's
 * logits (dz*: NULL = not wanted; a model that sits out gets a zero row).
 * zM: the owner's logits at x, p0: the owner's softmax at the seed, zS[s] /
 * zR[r]: the logits of surrogate s / reference r; useS/useR: which take part
 * (at least one of each). */
double ip_cae_loss(const float *zM, const float *p0, const float *const *zS, const int8_t *useS, int nS,
                   const float *const *zR, const int8_t *useR, int nR, int classes, const ip_cae_cfg *c, float *dzM,
                   float *const *dzS, float *const *dzR);

/* The conferrability score of label t: mean_s softmax(S)_t * (1 - mean_r softmax(R)_t) over every model
 * (soft), and Pr_s[S predicts t] * (1 - Pr_r[R predicts t]) (hard, the paper's Eq. 2). */
void ip_cae_score(const float *const *zS, int nS, const float *const *zR, int nR, int classes, int t, double *soft,
                  double *hard);

/* Why a seed gave no point: run->converged holds 1 (kept) or one of these. */
enum { IP_CAE_SEED_WRONG = -1, IP_CAE_NOT_ADVERSARIAL = -2, IP_CAE_LOW_SCORE = -3 };

/* Generates a CAE fingerprint of m (cfg->method = cae; cfg->points seeds,
 * training images in a permutation keyed by cfg->seed, as IPGuard's `init:
 * train`; cfg->lr the Adam rate in normalised input units; cfg->cae the
 * rest). sur/ref: the defender's surrogates and references, with m's input
 * shape, classes and normalisation. Checkpoints like
 * ip_fingerprint_generate_resumable (sv NULL: none). run->iterations are
 * cfg->cae.iterations; run->converged as the enum above; run->target = m's
 * label on the final point. */
int ip_cae_generate_resumable(ip_model *m, ip_model *const *sur, int nsur, ip_model *const *ref, int nref,
                              const ip_dataset *train, const float *lo, const float *hi, const ip_fp_cfg *cfg,
                              ip_fingerprint *fp, ip_fp_run *run, ip_saver *sv, ip_err *e);

/* Means over fp's points of their conferrability scores (soft, hard: ip_cae_score of each point's label) on the
 * given surrogates and references, queried on their default branch (NaN when fp has no points). */
int ip_cae_fingerprint_scores(ip_model *const *sur, int nsur, ip_model *const *ref, int nref, const ip_fingerprint *fp,
                              double *soft, double *hard, ip_err *e);

#endif
