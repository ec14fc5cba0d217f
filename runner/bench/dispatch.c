/* `ipsweep bench dispatch`: no-op tasks through the full coordinator path
 * (priority queue, MPI hand-out, result packing, journal with fsync, progress
 * accounting) to measure the scheduler's throughput. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../core/util/proc.h"
#include "../cli/cli.h"
#include "../run/journal.h"
#include "../run/results.h"
#include "../run/run_common.h"
#include "../run/sched.h"
#include "bench.h"

typedef struct dispatch_state {
    const rn_spec *spec;
    rn_journal journal;
    long finished;
} dispatch_state;

static int d_started(void *user, const rn_task *t, int rank, int alone, ip_err *e) {
    dispatch_state *s = user;
    return rn_journal_start_shared(&s->journal, t->key, rank, alone, e);
}

static int d_finished(void *user, const rn_result *const *rs, int n, ip_err *e) {
    dispatch_state *s = user;
    rn_record *recs = calloc((size_t)n, sizeof *recs);
    const rn_record **ptrs = calloc((size_t)n, sizeof *ptrs);
    int rc = (!recs || !ptrs) ? ip_fail(e, "out of memory") : 0;
    for (int i = 0; i < n && rc == 0; i++) {
        rn_record_init(&recs[i]);
        snprintf(recs[i].key, sizeof recs[i].key, "%s", s->spec->tasks[rs[i]->task].key);
        recs[i].status = rs[i]->status;
        recs[i].rank = rs[i]->rank;
        recs[i].wall_seconds = rs[i]->wall_seconds;
        for (int k = 0; k < rs[i]->metrics.nscalars && rc == 0; k++)
            rc = ip_metrics_set(&recs[i].metrics, rs[i]->metrics.names[k], rs[i]->metrics.values[k], e);
        ptrs[i] = &recs[i];
    }
    if (rc == 0) rc = rn_journal_finish_many(&s->journal, ptrs, n, e);
    for (int i = 0; recs && i < n; i++) rn_record_free(&recs[i]);
    free(recs), free(ptrs);
    s->finished += n;
    return rc;
}

int rn_bench_dispatch(int argc, char **argv) {
    int ntasks = 100000;
    char dir[1024] = "";
    cli_opt opts[] = {
        {"tasks", CLI_INT, &ntasks, 0, "N", "number of no-op tasks (default 100000)"},
        {"dir", CLI_STR, dir, sizeof dir, "DIR", "where the journal goes (default: a temporary directory)"},
    };
    cli_cmd c = {"bench dispatch", "mpirun -n 3 ipsweep bench dispatch [--tasks N]",
                 "Sends N no-op tasks through the coordinator (queue, MPI, journal with fsync) and prints\n"
                 "tasks_per_s. Run it under mpirun with at least 2 ranks; alone it measures the serial path.",
                 opts, 2, 0, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    if (ntasks < 1) return cli_error("bench dispatch", "--tasks must be positive");
    int rank, nranks;
    if (rn_mpi_begin(&rank, &nranks) != 0) return fprintf(stderr, "ipsweep bench dispatch: MPI_Init failed\n"), 1;
    /* the coordinator loads a spec of N no-op tasks (the loader's path too); workers get packed tasks */
    rn_spec spec;
    memset(&spec, 0, sizeof spec);
    if (rank == 0) {
        char text[512];
        rn_diags dg = {0};
        rn_spec_opts so = {.skip_data_check = 1};
        snprintf(text, sizeof text,
                 "name: dispatch\ndata: {source: \"synthetic:1\"}\ntasks:\n"
                 "  - {name: t, kind: noop, value: {range: [0, %d, 1]}}\n",
                 ntasks - 1);
        if (rn_spec_load_text(&spec, "dispatch.yaml", text, &so, NULL, 0, &dg) != 0) {
            rn_diags_print(&dg, stderr);
            rn_diags_free(&dg);
            if (nranks > 1) MPI_Abort(MPI_COMM_WORLD, 1);
            return 1;
        }
        rn_diags_free(&dg);
    }
    rn_ctx ctx = {.rank = rank, .threads = 1};
    ip_err e = {{0}};
    int exit_code = 0;
    if (rank != 0) {
        if (rn_sched_run(NULL, &ctx, NULL, NULL, NULL, &e) != 0) exit_code = 1;
    } else {
        char tmpl[] = "/tmp/ipsweep-dispatch-XXXXXX", out[1100];
        const char *d = dir[0] ? dir : mkdtemp(tmpl);
        snprintf(out, sizeof out, "%s/dispatch.h5", d ? d : ".");
        dispatch_state s = {.spec = &spec};
        s.journal.fd = -1;
        rn_status *status = calloc((size_t)ntasks, sizeof *status);
        rn_sched_hooks h = {.user = &s, .started = d_started, .finished = d_finished};
        int ok = d && status && rn_journal_open(&s.journal, out, 0x1234, 1, &e) == 0;
        if (!ok) {
            for (int i = 0; status && i < ntasks; i++) status[i] = RN_SKIPPED;
            h = (rn_sched_hooks){0};
        }
        double t0 = ip_now_s();
        rc = rn_sched_run(&spec, &ctx, status, &h, NULL, &e);
        double dt = ip_now_s() - t0;
        if (!ok || rc != 0 || s.finished != ntasks) {
            fprintf(stderr, "ipsweep bench dispatch: %s (finished %ld of %d)\n", e.msg[0] ? e.msg : "failed",
                    s.finished, ntasks);
            exit_code = 1;
        } else {
            printf("bench=dispatch ranks=%d workers=%d tasks=%d seconds=%.3f tasks_per_s=%.0f\n", nranks,
                   nranks > 1 ? nranks - 1 : 0, ntasks, dt, ntasks / dt);
        }
        rn_journal_close(&s.journal);
        char jpath[1200];
        if (!dir[0] && d && rn_journal_path(jpath, sizeof jpath, out) == 0) unlink(jpath), rmdir(d);
        free(status);
    }
    rn_spec_free(&spec);
    rn_mpi_end();
    return exit_code;
}
