/* `ipsweep run` and `ipsweep validate`: load and validate a spec, then run
 * its task graph through the scheduler with the journal, the results file
 * and progress as the coordinator's hooks. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../cli/cli.h"
#include "../cli/commands.h"
#include "../cli/signals.h"
#include "journal.h"
#include "progress.h"
#include "results.h"
#include "run_common.h"
#include "sched.h"
#include "cache_setup.h"
#include "sizing.h"
#include "../bench/bench.h"
#include "../kinds/cost.h"
#include "../spec/spec.h"
#include "../../core/util/proc.h"
#include "../../core/util/stop.h"
#include "../../core/io/resume.h"

#define MAX_SETS 64

int rn_mpi_begin(int *rank, int *nranks) {
    *rank = 0, *nranks = 1;
    if (!rn_launched_under_mpi()) return 0;
    int provided;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return -1;
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, nranks);
    return 0;
}

void rn_mpi_end(void) {
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    if (inited && !finalized) MPI_Finalize();
}

/* The directories every task's output file goes to (<outdir>/ckpt,
 * <outdir>/shards, <outdir>/fingerprints, ...): made once, by the process
 * that owns the run, before any worker writes. */
static int make_output_dirs(const rn_spec *spec, ip_err *e) {
    char last[1024] = "";
    for (int i = 0; i < spec->ntasks; i++) {
        const char *p = spec->tasks[i].checkpoint, *slash = strrchr(p, '/');
        size_t dl = slash ? (size_t)(slash - p) : 0;
        if (!dl || dl >= sizeof last || (strncmp(last, p, dl) == 0 && last[dl] == 0)) continue;
        memcpy(last, p, dl);
        last[dl] = 0;
        if (rn_mkdirs(last, 1, e) != 0) return -1;
    }
    return rn_mkdirs(spec->state_dir, 1, e);
}

/* A fresh run starts every task over: the state files an earlier run left
 * (<outdir>/state/ *.state) go. */
static int remove_states(const char *dir, ip_err *e) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : ip_fail(e, "cannot read %s: %s", dir, strerror(errno));
    struct dirent *de;
    int rc = 0;
    while ((de = readdir(d)) != NULL && rc == 0) {
        size_t l = strlen(de->d_name);
        if (l < 7 || strcmp(de->d_name + l - 6, ".state") != 0) continue;
        char path[2200];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (unlink(path) != 0 && errno != ENOENT) rc = ip_fail(e, "cannot remove %s: %s", path, strerror(errno));
    }
    closedir(d);
    return rc;
}

/* mkdir -p of the directory part of path (or of path itself when is_dir). */
int rn_mkdirs(const char *path, int is_dir, ip_err *e) {
    char buf[1100];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return ip_fail(e, "path too long: %s", path);
    if (!is_dir) {
        char *slash = strrchr(buf, '/');
        if (!slash) return 0;
        *slash = 0;
    }
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) return ip_fail(e, "cannot create directory %s: %s", buf, strerror(errno));
        *p = '/';
    }
    if (buf[0] && mkdir(buf, 0777) != 0 && errno != EEXIST)
        return ip_fail(e, "cannot create directory %s: %s", buf, strerror(errno));
    return 0;
}

static int file_exists(const char *p) {
    struct stat st;
    return stat(p, &st) == 0;
}

/* ---------------- the coordinator's hooks ---------------- */

typedef struct run_state {
    const rn_spec *spec;
    rn_journal journal;
    rn_record **by_task;      /* finished record per task (owned) or NULL */
    int *running;
    rn_progress progress;
    double flush_interval, last_flush;
    double flush_seconds, last_flush_seconds; /* time spent rewriting the results file: all, the last write */
    int nflush;
    int have_journal;
    unsigned char *suspect;  /* per task: started by an earlier run, never finished (resume) */
    int ninterrupted;        /* tasks that stopped on request and saved their state */
} run_state;

static int hook_started(void *user, const rn_task *t, int rank, int alone, ip_err *e) {
    run_state *s = user;
    s->running[t->id] = 1;
    rn_progress_started(&s->progress, t);
    return s->have_journal ? rn_journal_start_shared(&s->journal, t->key, rank, alone, e) : 0;
}

/* Tasks that were running when an earlier run died go out alone. */
static int hook_alone(void *user, const rn_task *t) {
    const run_state *s = user;
    return s->suspect && s->suspect[t->id];
}

static int hook_finished(void *user, const rn_result *const *rs, int n, ip_err *e) {
    run_state *s = user;
    const rn_record **recs = malloc((size_t)n * sizeof *recs);
    if (!recs) return ip_fail(e, "out of memory");
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        const rn_result *r = rs[i];
        const rn_task *t = &s->spec->tasks[r->task];
        rn_record *rec = malloc(sizeof *rec);
        if (!rec) {
            rc = ip_fail(e, "out of memory");
            break;
        }
        rn_record_init(rec);
        snprintf(rec->key, sizeof rec->key, "%s", t->key);
        rec->status = r->status;
        rec->rank = r->rank;
        rec->wall_seconds = r->status == RN_SKIPPED ? NAN : r->wall_seconds;
        rec->attempts = s->have_journal ? rn_journal_attempts(&s->journal, t->key) : 1;
        snprintf(rec->error, sizeof rec->error, "%s", r->error);
        for (int k = 0; k < r->metrics.nscalars && rc == 0; k++)
            rc = ip_metrics_set(&rec->metrics, r->metrics.names[k], r->metrics.values[k], e);
        for (int k = 0; k < r->metrics.narrays && rc == 0; k++)
            rc = ip_metrics_set_array(&rec->metrics, r->metrics.arrays[k].name, r->metrics.arrays[k].v,
                                      r->metrics.arrays[k].n, e);
        if (s->by_task[r->task]) {
            rn_record_free(s->by_task[r->task]);
            free(s->by_task[r->task]);
        }
        s->by_task[r->task] = rec;
        s->running[r->task] = 0;
        recs[i] = rec;
        rn_progress_finished(&s->progress, t, r);
    }
    if (rc == 0 && s->have_journal) rc = rn_journal_finish_many(&s->journal, recs, n, e);
    free(recs);
    return rc;
}

/* A task stopped on request: not finished; the journal says so (it is no
 * crash), the results file shows it interrupted. */
static int hook_interrupted(void *user, const rn_result *r, ip_err *e) {
    run_state *s = user;
    const rn_task *t = &s->spec->tasks[r->task];
    s->running[r->task] = RN_RUNNING_INTERRUPTED;
    s->ninterrupted++;
    rn_progress_interrupted(&s->progress, t, r);
    return s->have_journal ? rn_journal_interrupted(&s->journal, t->key, r->rank, e) : 0;
}

static void hook_progress(void *user, const rn_task_progress *p) {
    run_state *s = user;
    rn_progress_note(&s->progress, p);
}

/* Rewrites the results file (atomically: readers never see half a file). */
static int flush_results(run_state *s, int in_progress, ip_err *e) {
    double t0 = ip_now_s();
    int rc = rn_results_write(s->spec->output, s->spec, (const rn_record *const *)s->by_task, s->running, in_progress,
                              e);
    s->last_flush = ip_now_s();
    s->last_flush_seconds = s->last_flush - t0;
    s->flush_seconds += s->last_flush_seconds;
    s->nflush++;
    return rc;
}

/* In-progress rewrites stay cheap whatever the size of the file: the next
 * one waits at least --flush-interval and 10 times as long as the last took,
 * so they cost at most ~10% of the coordinator's time. */
static int hook_tick(void *user, ip_err *e) {
    run_state *s = user;
    rn_progress_status(&s->progress, 0);
    double wait = s->flush_interval > 10 * s->last_flush_seconds ? s->flush_interval : 10 * s->last_flush_seconds;
    if (ip_now_s() - s->last_flush >= wait) return flush_results(s, 1, e);
    return 0;
}

static void run_state_free(run_state *s) {
    if (s->by_task)
        for (int i = 0; i < s->spec->ntasks; i++)
            if (s->by_task[i]) rn_record_free(s->by_task[i]), free(s->by_task[i]);
    free(s->by_task);
    free(s->running);
    free(s->suspect);
    rn_progress_free(&s->progress);
    rn_journal_close(&s->journal);
}

/* The whole journal is valid and belongs to this spec and these settings
 * (RN_JOURNAL_BAD otherwise), checked before the resume opens it for appending. */
static int check_journal(const rn_spec *spec, ip_err *e) {
    rn_journal_state st;
    int rc = rn_journal_read(spec->output, rn_journal_spec_hash(spec), &st, e);
    if (rc == 0) rn_journal_state_free(&st);
    return rc;
}

/* Resume: statuses from the journal. DONE tasks stay done (when a task
 * produced a checkpoint, the file must still be there); failed and skipped
 * tasks are retried, except those that crashed their worker twice. */
static int load_resume(run_state *s, rn_status *status, int *ndone, ip_err *e) {
    rn_journal_state st;
    int rc = rn_journal_read(s->spec->output, rn_journal_spec_hash(s->spec), &st, e);
    if (rc != 0) return rc; /* RN_JOURNAL_BAD: bad input */
    if (rn_journal_fail_crashed(&s->journal, &st, e) < 0) {
        rn_journal_state_free(&st);
        return -1;
    }
    *ndone = 0;
    for (int i = 0; i < s->spec->ntasks; i++) {
        const rn_task *t = &s->spec->tasks[i];
        const rn_record *r = rn_journal_state_find(&st, t->key);
        if (!r) continue;
        int keep = r->status == RN_DONE && (!t->checkpoint[0] || file_exists(t->checkpoint));
        int crashed = r->status == RN_FAILED && strcmp(r->error, RN_CRASH_ERROR) == 0;
        if (!keep && !crashed) continue;
        s->by_task[i] = malloc(sizeof(rn_record));
        if (!s->by_task[i] || rn_record_copy(s->by_task[i], r, e) != 0) {
            rn_journal_state_free(&st);
            return ip_fail(e, "out of memory");
        }
        status[i] = r->status;
        (*ndone)++;
    }
    /* what was running when the earlier run died goes out alone this time */
    s->suspect = calloc((size_t)s->spec->ntasks + 1, 1);
    if (!s->suspect) {
        rn_journal_state_free(&st);
        return ip_fail(e, "out of memory");
    }
    for (int i = 0; i < s->spec->ntasks; i++)
        s->suspect[i] = !s->by_task[i] && rn_journal_state_lost(&st, s->spec->tasks[i].key);
    if (st.torn) fprintf(stderr, "resume: ignored a torn last journal line (a crash mid-write)\n");
    rn_journal_state_free(&st);
    return 0;
}

/* Mean and sample std of a metric over the done tasks [from, to) of one spec entry. */
static int entry_stat(const run_state *s, int from, int to, const char *metric, double *mean, double *sd) {
    double sum = 0, sq = 0;
    int n = 0;
    for (int i = from; i < to; i++) {
        const rn_record *r = s->by_task[i];
        if (!r || r->status != RN_DONE) continue;
        double v = ip_metrics_get(&r->metrics, metric);
        if (isnan(v)) continue;
        sum += v, sq += v * v, n++;
    }
    if (n == 0) return 0;
    *mean = sum / n;
    *sd = n > 1 ? sqrt(fmax(0, (sq - sum * sum / n) / (n - 1))) : 0;
    return n;
}

/* One line per spec entry: tasks done, and mean +- std of the headline
 * metrics. An entry's tasks are consecutive in the task list (the loader
 * expands an entry in one go, after what it refers to). */
static void print_summary(const run_state *s, FILE *f) {
    static const char *const metrics[] = {"test_acc", "public_test_acc", "detect", NULL};
    fprintf(f, "\n%-10s %-24s %7s", "kind", "entry", "done");
    for (int m = 0; metrics[m]; m++) fprintf(f, " %17s", metrics[m]);
    fputc('\n', f);
    const rn_task *T = s->spec->tasks;
    for (int i = 0, j; i < s->spec->ntasks; i = j) {
        int done = 0;
        for (j = i; j < s->spec->ntasks && T[j].k == T[i].k && !strcmp(T[j].name, T[i].name); j++)
            done += s->by_task[j] && s->by_task[j]->status == RN_DONE;
        char counts[32];
        snprintf(counts, sizeof counts, "%d/%d", done, j - i);
        fprintf(f, "%-10s %-24s %7s", T[i].kind, T[i].name, counts);
        for (int m = 0; metrics[m]; m++) {
            double mean, sd;
            int n = entry_stat(s, i, j, metrics[m], &mean, &sd);
            if (n == 0) fprintf(f, " %17s", "-");
            else if (n == 1) fprintf(f, " %17.4f", mean);
            else fprintf(f, "   %.4f +- %.4f", mean, sd);
        }
        fputc('\n', f);
    }
}

/* Collects every `--set k=v` (repeatable) and `--protocol NAME` (the same as
 * `--set protocol=NAME`: the spec's top-level protocol) and removes them from argv. */
static int take_sets(int *argc, char **argv, rn_override *ov, int *nov, const char *cmd) {
    int w = 0;
    for (int i = 0; i < *argc; i++) {
        const char *a = argv[i], *v = NULL;
        char proto[300];
        if (strcmp(a, "--set") == 0) {
            if (i + 1 >= *argc) return cli_error(cmd, "--set needs key.path=value");
            v = argv[++i];
        } else if (strncmp(a, "--set=", 6) == 0) {
            v = a + 6;
        } else if (strcmp(a, "--protocol") == 0 || strncmp(a, "--protocol=", 11) == 0) {
            const char *name = a[10] == '=' ? a + 11 : i + 1 < *argc ? argv[++i] : NULL;
            if (!name) return cli_error(cmd, "--protocol needs a name (" IP_PROTOCOL_CHOICES ")");
            snprintf(proto, sizeof proto, "protocol=%.280s", name);
            v = proto;
        }
        if (!v) {
            argv[w++] = argv[i];
            continue;
        }
        if (*nov >= MAX_SETS) return cli_error(cmd, "too many --set overrides (max %d)", MAX_SETS);
        if (rn_override_parse(&ov[*nov], v) != 0) return cli_error(cmd, "--set expects key.path=value, got \"%s\"", v);
        (*nov)++;
    }
    *argc = w;
    return CLI_OK;
}

int cmd_validate(int argc, char **argv) {
    rn_override ov[MAX_SETS];
    int nov = 0, no_data_check = 0;
    if (take_sets(&argc, argv, ov, &nov, "validate") != CLI_OK) return 2;
    cli_opt opts[] = {
        {"set", CLI_STR, NULL, 0, "KEY.PATH=VALUE", "override a spec value (repeatable)"},
        {"no-data-check", CLI_FLAG, &no_data_check, 0, NULL, "do not require the data files to exist"},
    };
    cli_cmd c = {"validate", "ipsweep validate SPEC.yaml [--set key.path=value ...]",
                 "Checks a spec (keys, types, ranges, references, data files, signature capacity) and\n"
                 "prints every error as file:line:column: key.path: message. Exit 0 when valid, 2 when not.",
                 opts + 1, 1, 1, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    if (c.npositional != 1) return cli_error("validate", "expected one spec file (see --help)");
    rn_spec s;
    rn_diags d = {0};
    rn_spec_opts so = {.skip_data_check = no_data_check};
    if (rn_spec_load_opts(&s, c.positional[0], &so, ov, nov, &d) != 0) {
        rn_diags_print(&d, stderr);
        fprintf(stderr, "%s: %d error%s\n", c.positional[0], d.n, d.n == 1 ? "" : "s");
        rn_diags_free(&d);
        return 2;
    }
    printf("%s: valid, %d tasks, results -> %s\n", c.positional[0], s.ntasks, s.output);
    rn_spec_free(&s);
    rn_diags_free(&d);
    return 0;
}

/* --calibrate: the cost model scaled to this machine (runner/kinds/cost.h),
 * one architecture's row at a time, for the rows in the bitmask `rows`. The
 * ranks that will work time themselves at once, as they will run (alone:
 * rank 0; under MPI: every worker, so that cores they share, SMT siblings,
 * show), and rank 0 takes their means. Collective: every rank calls it with
 * the same rows. Returns 0, or -1 on rank 0 when a rank failed. */
static int calibrate_costs(int rank, int nranks, unsigned rows) {
    int bad = 0;
    for (int r = 0; r < rn_arch_rows(); r++) {
        if (!(rows >> r & 1)) continue;
        const char *arch = rn_arch_row(r)->arch;
        double speed[RN_SPEEDS] = {0}, timed = 1; /* runner/kinds/cost.h's speeds; ranks timed */
        int failed = 0;
        ip_err e = {{0}};
        if (nranks == 1 || rank != 0) {
            failed = rn_cost_calibrate(arch, speed, &e) != 0;
            if (failed) fprintf(stderr, "ipsweep run: rank %d: %s\n", rank, e.msg);
        }
        if (nranks > 1) {
            /* sums of {the speeds, ranks timed, ranks failed}; rank 0 waits
             * without spinning: a busy MPI wait would take a core from the
             * workers while they time themselves */
            double mine[RN_SPEEDS + 2] = {0}, sum[RN_SPEEDS + 2] = {0};
            mine[RN_SPEEDS + 1] = failed;
            if (!failed && rank != 0) {
                for (int k = 0; k < RN_SPEEDS; k++) mine[k] = speed[k];
                mine[RN_SPEEDS] = 1;
            }
            MPI_Request req;
            MPI_Ireduce(mine, sum, RN_SPEEDS + 2, MPI_DOUBLE, MPI_SUM, 0, MPI_COMM_WORLD, &req);
            for (int done = 0; !done;) {
                MPI_Test(&req, &done, MPI_STATUS_IGNORE);
                if (!done) nanosleep(&(struct timespec){0, 2000000}, NULL);
            }
            failed = sum[RN_SPEEDS + 1] > 0;
            timed = sum[RN_SPEEDS];
            for (int k = 0; k < RN_SPEEDS; k++) speed[k] = timed > 0 ? sum[k] / timed : 0;
        }
        if (rank != 0) continue;
        int measured = !failed;
        for (int k = 0; k < RN_SPEEDS; k++) measured = measured && speed[k] > 0;
        if (!measured) {
            bad = 1;
            continue;
        }
        double f[RN_SPEEDS];
        rn_cost_set_measured_speed(arch, speed, f);
        printf("calibrated: %s trains at %.0f (%.0f in minibatches of %d) and evaluates at %.0f images/s and "
               "forges %.0f passport-images/s on one core here: %.2fx (%.2fx), %.2fx and %.2fx its row of the cost "
               "model (%.0f rank%s timed at once)\n",
               arch, speed[RN_SPEED_TRAIN], speed[RN_SPEED_TRAIN_SMALL], RN_SMALL_BATCH, speed[RN_SPEED_INFER],
               speed[RN_SPEED_FORGE], f[RN_SPEED_TRAIN], f[RN_SPEED_TRAIN_SMALL], f[RN_SPEED_INFER],
               f[RN_SPEED_FORGE], timed, timed > 1 ? "s" : "");
    }
    return bad ? -1 : 0;
}

/* The cost rows a spec's estimates read: small-p's (the default: a model
 * from outside the spec) and those of the architectures its tasks train. */
static unsigned spec_arch_rows(const rn_spec *s) {
    unsigned rows = 1;
    for (int i = 0; i < s->ntasks; i++) {
        const char *arch = rn_val_text(&s->tasks[i], "arch");
        if (arch[0]) rows |= 1u << rn_arch_index(arch);
    }
    return rows;
}

/* args: what followed `run`, untouched (the resume command repeats them) */
static int run_spec(int argc, char **argv, int nargs, char **args) {
    rn_override ov[MAX_SETS];
    int nov = 0;
    if (take_sets(&argc, argv, ov, &nov, "run") != CLI_OK) return 2;
    int dry = 0, resume = 0, force = 0, threads = 0, calibrate = 0;
    float flush = 30, every = 0;
    char limit_text[64] = "", style_text[16] = "auto";
    double limit = 0;
    rn_progress_style style = RN_PROGRESS_AUTO;
    cli_opt opts[] = {
        {"dry-run", CLI_FLAG, &dry, 0, NULL, "print the expanded tasks, dependencies and cost estimate; run nothing"},
        {"calibrate", CLI_FLAG, &calibrate, 0, NULL,
         "scale the cost estimates to this machine: each architecture the spec trains, timed first (seconds; "
         "docs/performance.md \"Cost model\")"},
        {"resume", CLI_FLAG, &resume, 0, NULL, "continue an interrupted run from its journal"},
        {"force", CLI_FLAG, &force, 0, NULL, "overwrite an existing results file and journal"},
        {"threads", CLI_INT, &threads, 0, "N", "OpenBLAS threads per rank (default: all cores alone, 1 under MPI)"},
        {"flush-interval", CLI_FLOAT, &flush, 0, "S", "seconds between rewrites of the in-progress results file (30)"},
        {"checkpoint-every", CLI_FLOAT, &every, 0, "S",
         "seconds between saves of a long task's state (default: the spec's checkpoint_every, else "
         IP_CHECKPOINT_EVERY_TEXT ")"},
        {"time-limit", CLI_STR, limit_text, sizeof limit_text, "LIMIT",
         "the job's limit: warn of tasks that cannot fit (Slurm's M[:S], H:M:S, D-H[:M[:S]]; 90m, 2h; UNLIMITED)"},
        {"progress", CLI_STR, style_text, sizeof style_text, RN_PROGRESS_STYLES,
         "status as a bar redrawn in place or as log lines (auto: a bar on a terminal; under mpirun say bar)"},
    };
    cli_cmd c = {"run", "ipsweep run SPEC.yaml [--dry-run] [--resume | --force] [--set key.path=value ...]",
                 "Runs an experiment spec: alone, or as `mpirun -n N ipsweep run SPEC` / `srun --mpi=pmix`\n"
                 "(rank 0 coordinates, the other ranks work). Writes one HDF5 results file (docs/results.md)\n"
                 "with an fsync'ed journal beside it; --resume continues after a crash or time limit.\n"
                 "SIGTERM, SIGUSR1 or Ctrl-C: long tasks save their state, the results file is written, exit 75;\n"
                 "--resume then continues them where they stopped (docs/hpc.md).\n"
                 "  --set KEY.PATH=VALUE  override a spec value, e.g. --set data.source=cifar10:/data (repeatable)\n"
                 "  --protocol NAME       " IP_PROTOCOL_CHOICES ": the spec's top-level protocol (docs/passports.md)",
                 opts, (int)(sizeof opts / sizeof *opts), 1, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    if (c.npositional != 1) return cli_error("run", "expected one spec file (see --help)");
    if (resume && force) return cli_error("run", "--resume and --force exclude each other");
    if (!(flush > 0)) return cli_error("run", "--flush-interval must be positive");
    if (every != 0 && !(every >= 1 && every <= IP_CHECKPOINT_EVERY_MAX))
        return cli_error("run", "--checkpoint-every must be between 1 and %d seconds", IP_CHECKPOINT_EVERY_MAX);
    char why[300];
    if (limit_text[0] && rn_parse_time_limit(limit_text, &limit, why, sizeof why) != 0)
        return cli_error("run", "--time-limit: %s", why);
    if (rn_progress_style_parse(style_text, &style) != 0)
        return cli_error("run", "--progress must be one of " RN_PROGRESS_STYLES ", not \"%s\"", style_text);
    size_t cache_bytes; /* the worker cache's setting (cache_setup.h), refused before anything is written */
    ip_err ce = {{0}};
    if (rn_cache_budget_from_env(&cache_bytes, &ce) != 0) return cli_error("run", "%s", ce.msg);

    int rank = 0, nranks = 1;
    if (rn_mpi_begin(&rank, &nranks) != 0) {
        fprintf(stderr, "ipsweep run: MPI_Init failed\n");
        return 1;
    }
    rn_signals_install(rank == 0); /* after MPI_Init: ours, not the MPI library's */
    /* only the coordinator loads the spec; the workers learn whether to work */
    rn_spec spec;
    memset(&spec, 0, sizeof spec);
    int go = 0; /* 0: run the scheduler; else the exit status of every rank */
    if (rank == 0) {
        rn_diags d = {0};
        rn_spec_opts so = {.skip_data_check = dry};
        if (rn_spec_load_opts(&spec, c.positional[0], &so, ov, nov, &d) != 0) {
            rn_diags_print(&d, stderr);
            fprintf(stderr, "%s: %d error%s; nothing was run\n", c.positional[0], d.n, d.n == 1 ? "" : "s");
            go = 2;
        }
        rn_diags_free(&d);
    }
    if (calibrate) { /* the rows of the spec's architectures, timed by the workers, then the tasks costed again */
        int msg[2] = {go, rank == 0 && !go ? (int)spec_arch_rows(&spec) : 0};
        if (nranks > 1) MPI_Bcast(msg, 2, MPI_INT, 0, MPI_COMM_WORLD);
        if (!msg[0] && calibrate_costs(rank, nranks, (unsigned)msg[1]) != 0) go = 1;
        if (rank == 0 && !go) rn_spec_recost(&spec);
    }
    if (rank == 0 && !go && dry) {
        rn_sizing z;
        rn_sizing_init(&z, &spec, rn_threads_default(threads), nranks > 1 ? nranks - 1 : 1, limit);
        rn_print_dry_run(&spec, &z);
        go = -1; /* exit 0 */
    }
    if (nranks > 1) MPI_Bcast(&go, 1, MPI_INT, 0, MPI_COMM_WORLD);
    if (go) {
        rn_spec_free(&spec);
        rn_mpi_end();
        return go < 0 ? 0 : go;
    }
    rn_ctx ctx;
    rn_spec_ctx(&spec, &ctx);
    if (every > 0) ctx.checkpoint_every = every;
    ctx.rank = rank;
    /* ranks share the node's cores: one BLAS thread each unless asked; alone, all cores */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    ctx.threads = ip_set_threads(threads > 0 ? threads : (nranks > 1 ? 1 : (int)(cores > 0 ? cores : 1)));

    ip_err e = {{0}};
    int exit_code = 0;
    if (rank != 0) { /* a worker */
        int wrc = rn_sched_run(NULL, &ctx, NULL, NULL, NULL, &e);
        if (wrc < 0) {
            fprintf(stderr, "ipsweep run (rank %d): %s\n", rank, e.msg);
            exit_code = 1;
        } else if (wrc == 1) {
            exit_code = IP_EXIT_INTERRUPTED;
        }
        rn_spec_free(&spec);
        rn_mpi_end();
        return exit_code;
    }

    /* the coordinator: refuse to clobber, prepare output, journal, resume */
    run_state s = {.spec = &spec, .flush_interval = flush};
    s.journal.fd = -1;
    rn_status *status = calloc((size_t)spec.ntasks + 1, sizeof *status);
    s.by_task = calloc((size_t)spec.ntasks + 1, sizeof *s.by_task);
    s.running = calloc((size_t)spec.ntasks + 1, sizeof *s.running);
    char jpath[1100];
    int ndone = 0, fatal = 0, jrc = 0;
    if (!status || !s.by_task || !s.running || rn_journal_path(jpath, sizeof jpath, spec.output) != 0) {
        ip_fail(&e, "out of memory or output path too long");
        fatal = 1;
    } else if (!resume && !force && (file_exists(spec.output) || file_exists(jpath))) {
        ip_fail(&e, "%s already exists (results of an earlier run): use --resume to continue it or --force to "
                    "overwrite it",
                file_exists(spec.output) ? spec.output : jpath);
        fatal = 2;
    } else if (rn_mkdirs(spec.output, 0, &e) != 0 || make_output_dirs(&spec, &e) != 0 ||
               (!resume && remove_states(spec.state_dir, &e) != 0)) {
        fatal = 1;
    } else if (resume && file_exists(jpath) && (jrc = check_journal(&spec, &e)) != 0) {
        fatal = jrc == RN_JOURNAL_BAD ? 2 : 1; /* before opening it: a refused resume writes nothing */
    } else if ((jrc = rn_journal_open(&s.journal, spec.output, rn_journal_spec_hash(&spec), !resume, &e)) != 0) {
        fatal = jrc == RN_JOURNAL_BAD ? 2 : 1;
    } else {
        s.have_journal = 1;
        if (!resume && rn_journal_note_settings(&s.journal, &spec, &e) != 0) fatal = 1;
        if (resume && (jrc = load_resume(&s, status, &ndone, &e)) != 0) fatal = jrc == RN_JOURNAL_BAD ? 2 : 1;
        if (resume && !fatal) { /* bounded however often a run is resumed; a failure only costs room */
            rn_compaction c;
            ip_err ce = {{0}};
            if (rn_journal_compact(&s.journal, RN_COMPACT_MIN_SAVING, &c, &ce) < 0)
                fprintf(stderr, "resume: journal not compacted: %s\n", ce.msg);
            else if (c.rewritten)
                fprintf(stderr, "resume: journal compacted from %lld to %lld bytes in %.2f s\n", c.bytes_before,
                        c.bytes_after, c.seconds);
        }
    }
    if (fatal == 2 && resume) { /* name the setting that changed, when the journal recorded them */
        char why[900];
        if (rn_journal_explain_change(spec.output, &spec, why, sizeof why))
            ip_fail(&e, "resume: %s (%.200s): refusing to resume; rerun with --force to start over", why, jpath);
    }
    rn_sizing z;
    rn_sizing_init(&z, &spec, ctx.threads, nranks > 1 ? nranks - 1 : 1, limit);
    if (!fatal && rn_progress_init(&s.progress, stderr, &spec, status, &z, &e) != 0) fatal = 1;
    if (!fatal) rn_progress_set_style(&s.progress, style);
    if (!fatal) {
        fprintf(stderr, "run %s: %d tasks (%d already done), %d rank%s, %d BLAS thread%s per rank -> %s\n", spec.name,
                spec.ntasks, ndone, nranks, nranks > 1 ? "s" : "", ctx.threads, ctx.threads > 1 ? "s" : "",
                spec.output);
        rn_sizing_report(&spec, &z, status, stderr);
        if (flush_results(&s, 1, &e) != 0) fatal = 1;
    }
    rn_sched_hooks hooks = {&s, hook_started, hook_finished, hook_tick, hook_alone, hook_interrupted, hook_progress};
    /* workers wait for the coordinator: even when it cannot run, it must run
     * the scheduler with nothing to do, so they are told to stop */
    if (fatal)
        for (int i = 0; i < spec.ntasks; i++) status[i] = RN_SKIPPED;
    ip_err se = {{0}};
    int src = rn_sched_run(&spec, &ctx, status, fatal ? &(rn_sched_hooks){0} : &hooks, NULL, &se);
    if (!fatal && src < 0) {
        e = se;
        fatal = 1;
    }
    int stopped = !fatal && src == 1;
    if (!fatal) {
        rn_progress_summary(&s.progress);
        /* stopped: a partial file (in_progress), the interrupted tasks shown as such */
        if (flush_results(&s, stopped, &e) != 0) fatal = 1;
    }
    if (fatal) {
        fprintf(stderr, "ipsweep run: %s\n", e.msg);
        exit_code = fatal;
    } else if (stopped) {
        int ndone_all = 0;
        for (int i = 0; i < spec.ntasks; i++) ndone_all += s.by_task[i] && s.by_task[i]->status == RN_DONE;
        char again[2048];
        fprintf(stderr,
                "run %s: stopped by %s: %d of %d tasks done, %d interrupted with their state saved; results so far in "
                "%s\n"
                "resume with: %s (under the same mpirun/srun)\n",
                spec.name, rn_signal_name(ip_stop_signal()), ndone_all, spec.ntasks, s.ninterrupted, spec.output,
                rn_resume_command(again, sizeof again, nargs, args));
        exit_code = IP_EXIT_INTERRUPTED;
    } else {
        /* the whole run, resumed records included (a task failed by the crash-twice rule at resume) */
        int ndone_all = 0, failed = 0, skipped = 0;
        for (int i = 0; i < spec.ntasks; i++)
            if (s.by_task[i]) {
                ndone_all += s.by_task[i]->status == RN_DONE;
                failed += s.by_task[i]->status == RN_FAILED;
                skipped += s.by_task[i]->status == RN_SKIPPED;
            }
        print_summary(&s, stdout);
        fprintf(stderr, "run %s: %d done, %d failed, %d skipped of %d; results in %s\n", spec.name, ndone_all, failed,
                skipped, spec.ntasks, spec.output);
        fprintf(stderr, "results: %d writes of the results file took %.1f s in all (the last, %d rows: %.2f s)\n",
                s.nflush, s.flush_seconds, spec.ntasks, s.last_flush_seconds);
        if (failed || skipped) {
            fprintf(stderr, "failed tasks:\n");
            for (int i = 0; i < spec.ntasks; i++)
                if (s.by_task[i] && s.by_task[i]->status == RN_FAILED)
                    fprintf(stderr, "  %s: %s\n", spec.tasks[i].key, s.by_task[i]->error);
            exit_code = 1;
        }
    }
    run_state_free(&s);
    free(status);
    rn_spec_free(&spec);
    rn_mpi_end();
    return exit_code;
}

int cmd_run(int argc, char **argv) {
    char **args = malloc(((size_t)argc + 1) * sizeof *args);
    if (!args) {
        fprintf(stderr, "ipsweep run: out of memory\n");
        return 1;
    }
    memcpy(args, argv, (size_t)argc * sizeof *args); /* take_sets reorders argv */
    int rc = run_spec(argc, argv, argc, args);
    free(args);
    return rc;
}
