#include <stdlib.h>
#include <unistd.h>

#include "../../core/util/par.h"
#include "../cli/commands.h"
#include "run_common.h"

/* Ranks of one job share the node's cores: with several ranks per node, more
 * than one BLAS thread per rank oversubscribes them. */
int rn_launched_under_mpi(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK", "SLURM_NTASKS", NULL};
    for (int i = 0; vars[i]; i++) {
        const char *v = getenv(vars[i]);
        if (v && atoi(v) > 1) return 1;
        if (v && i == 2) return 1; /* PMIX_RANK is set for every rank */
    }
    return 0;
}

int rn_threads_default(int requested) {
    if (requested > 0) return requested;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return rn_launched_under_mpi() ? 1 : (cores > 0 ? (int)cores : 1);
}

int ip_set_threads(int requested) {
    int n = rn_threads_default(requested);
    ip_par_set_threads(n); /* OpenBLAS itself stays single-threaded (core/nn/gemm.h) */
    return n;
}
