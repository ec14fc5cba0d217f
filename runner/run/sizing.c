/* Sizing a run against a job's time limit (sizing.h). */
#include "sizing.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "run_common.h"

const char *rn_format_duration(double s, char *out, size_t cap) {
    if (!cap) return out;
    if (!(s >= 0)) { /* negative or NaN: unknown (an ETA before the first task ends) */
        snprintf(out, cap, "?");
        return out;
    }
    if (isinf(s)) {
        snprintf(out, cap, "forever");
        return out;
    }
    if (s > 8.64e13) { /* a billion days: beyond what llround holds in minutes, and beyond any job */
        snprintf(out, cap, "%.3gd", s / 86400);
        return out;
    }
    /* each branch rounds to its last unit first, so 3599.7 s is "1h", not "60m 0s" */
    if (s > 0 && s < 0.05) {
        snprintf(out, cap, "<0.1s");
    } else if (s < 9.95) {
        snprintf(out, cap, "%.1fs", s);
    } else if (s < 59.5) {
        snprintf(out, cap, "%.0fs", s);
    } else if (s < 3599.5) {
        long long r = llround(s), sec = r % 60;
        if (sec) snprintf(out, cap, "%lldm %llds", r / 60, sec);
        else snprintf(out, cap, "%lldm", r / 60);
    } else {
        long long m = llround(s / 60), d = m / 1440, h = m / 60 % 24, mi = m % 60;
        if (!d && mi) snprintf(out, cap, "%lldh %lldm", h, mi);
        else if (!d) snprintf(out, cap, "%lldh", h);
        else if (mi) snprintf(out, cap, "%lldd %lldh %lldm", d, h, mi);
        else if (h) snprintf(out, cap, "%lldd %lldh", d, h);
        else snprintf(out, cap, "%lldd", d);
    }
    return out;
}

/* ---------------- --time-limit ---------------- */

#define LIMIT_FORMATS                                                                                                  \
    "expected Slurm's M, M:S, H:M:S, D-H, D-H:M or D-H:M:S, or a number with s, m, h or d (3600s, 90m, 2h, 1d)"

/* A field of digits only (at most 9: no overflow), from p up to an end
 * character; *end is the character after the field. -1 when not one. */
static long field(const char *p, const char **end) {
    long v = 0;
    int n = 0;
    for (; isdigit((unsigned char)*p); p++, n++) {
        if (n >= 9) return -1;
        v = v * 10 + (*p - '0');
    }
    *end = p;
    return n ? v : -1;
}

int rn_parse_time_limit(const char *text, double *seconds, char *msg, size_t cap) {
    *seconds = 0;
    if (!text || !*text) return snprintf(msg, cap, "empty time limit: " LIMIT_FORMATS), -1;
    if (!strcasecmp(text, "UNLIMITED") || !strcasecmp(text, "INFINITE")) return 0;
    size_t len = strlen(text);
    const char *units = "smhd";
    const char *u = strchr(units, text[len - 1]);
    if (u && len > 1) { /* a number with a unit: digits and at most one '.' (no exponent, sign, inf or nan) */
        int digits = 0, dots = 0;
        for (size_t i = 0; i + 1 < len; i++) {
            if (isdigit((unsigned char)text[i])) digits++;
            else if (text[i] == '.') dots++;
            else digits = -1000;
        }
        if (digits < 1 || dots > 1 || len > 20)
            return snprintf(msg, cap, "bad time limit \"%.40s\": " LIMIT_FORMATS, text), -1;
        static const double per[] = {1, 60, 3600, 86400};
        *seconds = strtod(text, NULL) * per[u - units];
    } else {
        /* Slurm: [D-]fields, where fields are M, M:S or H:M:S without days and H, H:M or H:M:S with them */
        const char *p = text, *end;
        long days = -1, f[3];
        int nf = 0;
        const char *dash = strchr(text, '-');
        if (dash) {
            days = field(p, &end);
            if (days < 0 || end != dash) return snprintf(msg, cap, "bad time limit \"%.40s\": " LIMIT_FORMATS, text), -1;
            p = dash + 1;
        }
        for (;;) {
            if (nf == 3) return snprintf(msg, cap, "bad time limit \"%.40s\": " LIMIT_FORMATS, text), -1;
            f[nf] = field(p, &end);
            if (f[nf++] < 0 || (*end && *end != ':'))
                return snprintf(msg, cap, "bad time limit \"%.40s\": " LIMIT_FORMATS, text), -1;
            if (!*end) break;
            p = end + 1;
        }
        long d = days < 0 ? 0 : days, h = 0, m = 0, s = 0;
        if (days >= 0) h = f[0], m = nf > 1 ? f[1] : 0, s = nf > 2 ? f[2] : 0;
        else if (nf == 1) m = f[0];
        else if (nf == 2) m = f[0], s = f[1];
        else h = f[0], m = f[1], s = f[2];
        /* the first field may be large (Slurm's "600" minutes, "100:00:00"); the others are clock fields */
        if ((days >= 0 && h >= 24) || ((days >= 0 || nf == 3) && m >= 60) || (nf > 1 && s >= 60))
            return snprintf(msg, cap,
                            "bad time limit \"%.40s\": hours after days must be below 24, minutes and seconds after "
                            "another field below 60",
                            text),
                   -1;
        *seconds = (((double)d * 24 + (double)h) * 60 + (double)m) * 60 + (double)s;
    }
    if (!(*seconds > 0))
        return snprintf(msg, cap, "bad time limit \"%.40s\": it must be more than 0 (UNLIMITED for none)", text), -1;
    return 0;
}

/* ---------------- the speedup model ---------------- */

int rn_rank_cores(int threads) {
    const char *v = getenv("SLURM_CPUS_PER_TASK");
    if (v && atoi(v) > 0) return atoi(v);
    if (!rn_launched_under_mpi()) {
        long c = sysconf(_SC_NPROCESSORS_ONLN);
        return c > 0 ? (int)c : 1;
    }
    return threads > 0 ? threads : 1;
}

void rn_sizing_init(rn_sizing *z, const rn_spec *s, int threads, int workers, double limit) {
    memset(z, 0, sizeof *z);
    z->threads = threads > 0 ? threads : 1;
    z->cores = rn_rank_cores(z->threads);
    z->workers = workers > 0 ? workers : 1;
    z->limit = limit > 0 ? limit : 0;
    rn_spec_ctx(s, &z->ctx);
    z->ctx.threads = z->threads;
}

int rn_task_threads(const rn_task *t, const rn_sizing *z) { return t->threads ? t->threads : z->threads; }

double rn_wall_seconds(double cost, int threads, int cores) {
    int n = threads < 1 ? 1 : threads;
    if (cores >= 1 && n > cores) n = cores;
    return cost * ((1 - RN_PARALLEL_FRACTION) + RN_PARALLEL_FRACTION / n);
}

double rn_task_wall(const rn_task *t, const rn_sizing *z) {
    return rn_wall_seconds(t->cost, rn_task_threads(t, z), z->cores);
}

double rn_task_step_wall(const rn_task *t, const rn_sizing *z) {
    double step = t->k && t->k->step_cost ? t->k->step_cost(t, &z->ctx) : t->cost;
    return rn_wall_seconds(step < t->cost ? step : t->cost, rn_task_threads(t, z), z->cores);
}

/* ---------------- the warnings ---------------- */

/* One group of tasks a warning names: how many, the first RN_SIZING_LIST. */
typedef struct group {
    int n, ids[RN_SIZING_LIST];
    double most;           /* the largest figure of the group (job lengths, step seconds) */
} group;

static void group_add(group *g, int id, double figure) {
    if (g->n < RN_SIZING_LIST) g->ids[g->n] = id;
    g->n++;
    if (figure > g->most) g->most = figure;
}

static void group_more(const group *g, FILE *f) {
    if (g->n > RN_SIZING_LIST) fprintf(f, "  ... and %d more\n", g->n - RN_SIZING_LIST);
}

static const char *pl(int n) { return n == 1 ? "" : "s"; }

int rn_sizing_report(const rn_spec *s, const rn_sizing *z, const rn_status *status, FILE *f) {
    int warnings = 0;
    char a[48], b[48], lim[48];
    rn_format_duration(z->limit, lim, sizeof lim);
    /* more threads than a rank's cores: named by entry (an entry's tasks are consecutive) */
    group thr = {0};
    int nentries = 0;
    const char *last = NULL;
    for (int i = 0; i < s->ntasks; i++) {
        const rn_task *t = &s->tasks[i];
        if (t->threads <= z->cores || (status && status[i] == RN_DONE)) continue;
        if (!last || strcmp(last, t->name) != 0) {
            if (nentries < RN_SIZING_LIST) thr.ids[nentries] = i;
            nentries++;
            last = t->name;
        }
        thr.n++;
        if (t->threads > thr.most) thr.most = t->threads;
    }
    if (thr.n) {
        fprintf(f, "warning: %d task%s ask%s for up to %.0f threads but a rank has %d core%s: %s with the "
                   "threads asked, sharing the cores (the estimates count %d); entries:",
                thr.n, pl(thr.n), thr.n == 1 ? "s" : "", thr.most, z->cores, pl(z->cores),
                thr.n == 1 ? "it runs" : "they run", z->cores);
        for (int k = 0; k < nentries && k < RN_SIZING_LIST; k++)
            fprintf(f, "%s %s (%d)", k ? "," : "", s->tasks[thr.ids[k]].name, s->tasks[thr.ids[k]].threads);
        if (nentries > RN_SIZING_LIST) fprintf(f, " and %d more", nentries - RN_SIZING_LIST);
        fputc('\n', f);
        warnings++;
    }
    if (!(z->limit > 0)) return warnings;

    group resumes = {0}, never = {0}, stuck = {0};
    double *path = calloc((size_t)s->ntasks + 1, sizeof *path), critical = 0, sum = 0;
    for (int i = 0; i < s->ntasks; i++) {
        const rn_task *t = &s->tasks[i];
        if (status && status[i] == RN_DONE) continue; /* a resumed run: what is left */
        double w = rn_task_wall(t, z), start = 0;
        for (int d = 0; path && d < t->ndeps; d++)
            if (path[t->deps[d]] > start) start = path[t->deps[d]];
        if (path) path[i] = start + w;
        if (path && path[i] > critical) critical = path[i];
        sum += w;
        if (w <= z->limit) continue;
        double step = rn_task_step_wall(t, z);
        if (!t->k->def->at_resume) group_add(&never, i, w);
        else if (step > z->limit) group_add(&stuck, i, step);
        else group_add(&resumes, i, ceil(w / z->limit));
    }
    free(path);
    if (resumes.n) {
        fprintf(f, "note: %d task%s take%s longer than the time limit (%s) but checkpoint%s: up to ~%.0f job lengths "
                   "each (at the limit it saves, the job requeues itself, and it resumes)\n",
                resumes.n, pl(resumes.n), resumes.n == 1 ? "s" : "", lim, resumes.n == 1 ? "s itself" : " themselves",
                resumes.most);
        for (int k = 0; k < resumes.n && k < RN_SIZING_LIST; k++) {
            const rn_task *t = &s->tasks[resumes.ids[k]];
            double w = rn_task_wall(t, z);
            fprintf(f, "  %s: ~%s, needs ~%.0f job lengths\n", t->key, rn_format_duration(w, a, sizeof a),
                    ceil(w / z->limit));
        }
        group_more(&resumes, f);
    }
    if (never.n) {
        fprintf(f, "warning: %d task%s cannot checkpoint and take%s longer than the time limit (%s): %s will never "
                   "finish; raise the limit or make %s smaller\n",
                never.n, pl(never.n), never.n == 1 ? "s" : "", lim, never.n == 1 ? "it" : "they",
                never.n == 1 ? "it" : "them");
        for (int k = 0; k < never.n && k < RN_SIZING_LIST; k++)
            fprintf(f, "  %s: ~%s\n", s->tasks[never.ids[k]].key,
                    rn_format_duration(rn_task_wall(&s->tasks[never.ids[k]], z), a, sizeof a));
        group_more(&never, f);
        warnings++;
    }
    if (stuck.n) {
        fprintf(f, "warning: %d task%s ha%s a single step longer than the time limit (%s): %s can never make "
                   "progress, even with checkpoints; raise the limit or make the step smaller\n",
                stuck.n, pl(stuck.n), stuck.n == 1 ? "s" : "ve", lim, stuck.n == 1 ? "it" : "they");
        for (int k = 0; k < stuck.n && k < RN_SIZING_LIST; k++) {
            const rn_task *t = &s->tasks[stuck.ids[k]];
            fprintf(f, "  %s: one step ~%s of ~%s\n", t->key, rn_format_duration(rn_task_step_wall(t, z), a, sizeof a),
                    rn_format_duration(rn_task_wall(t, z), b, sizeof b));
        }
        group_more(&stuck, f);
        warnings++;
    }
    /* the whole run: its tasks on the workers, never shorter than its critical path */
    double wall = fmax(sum / z->workers, critical), jobs = ceil(wall / z->limit);
    char c[48];
    fprintf(f, "sizing: ~%s wall (critical path %s; %s of tasks on %d worker%s): ", rn_format_duration(wall, a, sizeof a),
            rn_format_duration(critical, b, sizeof b), rn_format_duration(sum, c, sizeof c), z->workers,
            pl(z->workers));
    if (jobs <= 1) fprintf(f, "fits in one job length of %s\n", lim);
    else fprintf(f, "needs about %.0f job lengths of %s\n", jobs, lim);
    return warnings;
}
