/* The room of `ipsweep bench`: one file per benchmark (gemm.c, train.c,
 * dispatch.c, forge.c, fingerprint.c) and the dispatcher with THE table of
 * benchmarks (bench.c). Each benchmark takes the arguments after its name,
 * prints one line of key=value on stdout (docs/performance.md) and returns the
 * exit status (0 ok, 1 failed, 2 usage error). Adding one: a file here and a
 * row in rn_benches[]. */
#ifndef RN_BENCH_H
#define RN_BENCH_H

#include <stddef.h>
#include <stdint.h>

#include "../../core/io/data.h"
#include "../../core/model/model.h"
#include "../../core/passport/forge.h"
#include "../../core/passport/passport_keys.h"
#include "../../core/nn/optim.h"
#include "../../core/util/err.h"

int rn_bench_gemm(int argc, char **argv);
int rn_bench_train(int argc, char **argv);
int rn_bench_dispatch(int argc, char **argv);
int rn_bench_forge(int argc, char **argv);
int rn_bench_fingerprint(int argc, char **argv);

/* How `bench train` times training and inference, shared with the cost
 * model's calibration: a model of cfg->arch (its input shape set here, as
 * torch_anchor.py has it: small-p*: 1x28x28, else 3x32x32, 10 classes),
 * planned for `batch` images, an SGD optimizer, and one batch of N(0, 1)
 * inputs and labels < 10, the same every time. */
typedef struct rn_bench_rig {
    ip_model m;
    ip_optim opt;
    float *x;
    int32_t *y;
    int batch;
} rn_bench_rig;
int rn_bench_rig_init(rn_bench_rig *r, ip_model_cfg *cfg, int batch, ip_err *e);
void rn_bench_rig_free(rn_bench_rig *r);
/* seconds of `steps` SGD steps (lr 0.01) on the rig's batch after `warmup` untimed ones */
double rn_bench_time_steps(rn_bench_rig *r, int warmup, int steps);
/* seconds of `steps` eval-mode forward passes of the rig's batch after `warmup` untimed ones */
double rn_bench_time_infer(rn_bench_rig *r, int warmup, int steps);

/* The forger's bench (`bench forge`, `run --calibrate`): a model and its
 * evaluation images, the forger on them, random passports and their results.
 * rn_forge_rig_init fills m and d with an untrained v1 model of `arch` (norm
 * "bn" or "gn") and `images` random inputs of the shape torch_anchor.py uses,
 * with random labels; the caller creates the rest. rn_forge_rig_free frees
 * what is there (a zeroed rig is empty). */
typedef struct rn_forge_rig {
    ip_model m;
    ip_dataset d;
    ip_forge *f;
    ip_keygen kg;
    ip_forge_result res;
} rn_forge_rig;
int rn_forge_rig_init(rn_forge_rig *r, const char *arch, const char *norm, int images, ip_err *e);
void rn_forge_rig_free(rn_forge_rig *r);

/* `run --calibrate` (calibrate.c): training steps and eval-mode passes of
 * `arch` at one thread on this machine, timed as its row of
 * runner/kinds/cost.c was measured with `bench train --threads 1 --scheme
 * baseline` (and training again in minibatches of RN_SMALL_BATCH), and the
 * forger on random passports of its untrained v1 model, full mode, as `bench
 * forge --threads 1` (the best of 3 short rounds of each, ~0.2 s each at the
 * row's speed and at least one step or two passports):
 * speed[RN_SPEED_*] (runner/kinds/cost.h), for
 * rn_cost_set_measured_speed. Leaves one BLAS thread set: set the run's after. */
int rn_cost_calibrate(const char *arch, double speed[], ip_err *e);

/* A row of the table: `bench` dispatch, its usage and the top-level help
 * (main.c, through rn_bench_names in commands.h) all come from it. */
typedef struct rn_bench {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} rn_bench;
extern const rn_bench rn_benches[];
extern const int rn_nbenches;

#endif
