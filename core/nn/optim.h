/* Optimisers: SGD with momentum and weight decay (PyTorch semantics:
 * g += wd*p; v = mu*v + g; p -= lr*v) and Adam (bias-corrected, L2 weight decay
 * added to the gradient as torch.optim.Adam does). State in one flat allocation.
 * Only tensors marked trainable are updated. */
#ifndef IP_OPTIM_H
#define IP_OPTIM_H

#include <stddef.h>

#include "../util/err.h"
#include "../model/model.h"

typedef enum { IP_OPT_SGD = 0, IP_OPT_ADAM = 1 } ip_opt_kind;

#define IP_MAX_MILESTONES 8

typedef struct ip_optim_cfg {
    ip_opt_kind kind;
    float lr;
    float momentum;        /* SGD */
    float weight_decay;
    float beta1, beta2, eps; /* Adam */
    int milestones[IP_MAX_MILESTONES]; /* epochs at which lr *= lr_decay */
    int nmilestones;
    float lr_decay;
} ip_optim_cfg;

/* Defaults: SGD lr 0.01 momentum 0.9 wd 5e-4, no milestones, decay 0.1; Adam betas 0.9/0.999 eps 1e-8. */
void ip_optim_defaults(ip_optim_cfg *c, ip_opt_kind kind);

typedef struct ip_optim {
    ip_optim_cfg cfg;
    float *state;          /* SGD: velocity (n); Adam: m (n) then v (n) */
    size_t n;
    long t;                /* steps taken */
} ip_optim;

int ip_optim_init(ip_optim *o, const ip_optim_cfg *cfg, size_t nparams, ip_err *e);
void ip_optim_free(ip_optim *o);
/* Learning rate for a 0-based epoch under the multi-step schedule. */
float ip_optim_lr_at(const ip_optim_cfg *c, int epoch);
/* One update of every trainable tensor of m with lr. */
void ip_optim_step(ip_optim *o, ip_model *m, float lr);
/* The same update on a bare vector (used for inputs and passports, e.g. IPGuard's Adam on x). */
void ip_optim_step_vec(ip_optim *o, float *p, const float *g, size_t n, float lr);

#endif
