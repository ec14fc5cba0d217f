/* Small helpers shared by the commands that run specs (run, bench dispatch). */
#ifndef RN_RUN_COMMON_H
#define RN_RUN_COMMON_H

#include "../../core/util/err.h"

/* 1 when the process was started by mpirun/srun with more than one rank
 * (or under PMIx): then MPI is initialised; alone it never is. */
int rn_launched_under_mpi(void);
/* The threads ip_set_threads(requested) would set, without setting them:
 * requested when > 0, else all cores alone and 1 per rank under MPI
 * (runner/run/threads.c: the rule's one home). */
int rn_threads_default(int requested);
/* MPI_Init when launched under MPI; rank 0 / 1 rank otherwise. */
int rn_mpi_begin(int *rank, int *nranks);
/* MPI_Finalize when MPI was initialised. */
void rn_mpi_end(void);
/* mkdir -p of path (is_dir) or of its directory part. */
int rn_mkdirs(const char *path, int is_dir, ip_err *e);

#endif
