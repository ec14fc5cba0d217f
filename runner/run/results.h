/* The results file: one HDF5 file per run, written by the coordinator only,
 * always rebuilt whole into "<path>.tmp.<pid>", fsync'ed and renamed over
 * <path> (then the directory is fsync'ed), so readers see the previous
 * complete file or the new complete one, never a partial one. The layout
 * (root attributes, /spec, /tasks, /metrics/<kind>, /arrays/<kind>/<metric>)
 * is documented in docs/results.md. */
#ifndef RN_RESULTS_H
#define RN_RESULTS_H

#include "../../core/util/err.h"
#include "journal.h"
#include "../spec/spec.h"

#define RN_RESULTS_FORMAT_VERSION 1
/* running[i] of a task that stopped on request and saved its state */
#define RN_RUNNING_INTERRUPTED 2

/* Writes the results file for spec->tasks. by_task has spec->ntasks entries:
 * the finished record of each task or NULL (then the task is "running" when
 * running[i] is set, "interrupted" when it is RN_RUNNING_INTERRUPTED, else
 * "pending"; running may be NULL). A record's key
 * must be its task's key. in_progress=1 marks a partial file (root attribute
 * in_progress). Datasets bigger than 64 KB are chunked and deflated (level 4,
 * with shuffle). Returns 0, or -1 with a message; on failure <path> is left
 * as it was and the temporary file is removed. */
int rn_results_write(const char *path, const rn_spec *spec, const rn_record *const *by_task, const int *running,
                     int in_progress, ip_err *e);

#endif
