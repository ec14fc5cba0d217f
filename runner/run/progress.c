#include "progress.h"
#include "../../core/util/proc.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* ---------------- pure parts ---------------- */

double rn_eta_seconds(const rn_eta_in *in) {
    if (in->tasks_left <= 0) return 0;
    double speed = in->estimated > 0 && in->measured >= 0 ? in->measured / in->estimated : 1;
    if (in->left > 0) {
        double share = in->left / (in->workers > 0 ? in->workers : 1);
        double eta = speed * (share > in->longest ? share : in->longest);
        double floor = in->peak_rate > 0 ? in->tasks_left / in->peak_rate : 0;
        return eta > floor ? eta : floor;
    }
    /* tasks left that the cost model gives no time: the rate so far */
    if (in->tasks_done > 0 && in->elapsed > 0) return in->tasks_left * in->elapsed / in->tasks_done;
    return -1;
}

const char *rn_format_hms(double s, char *out, size_t cap) {
    if (!cap) return out;
    if (!(s >= 0)) {
        snprintf(out, cap, "?");
    } else if (s >= 3.6e12) { /* a billion hours: beyond any run, and beyond what llround holds */
        snprintf(out, cap, ">1e9 h");
    } else {
        long long r = llround(s);
        snprintf(out, cap, "%lld:%02lld:%02lld", r / 3600, r / 60 % 60, r % 60);
    }
    return out;
}

/* An argument as the shell reads it back: as is when it is plain, else single-quoted. */
static size_t put_arg(char *out, size_t cap, size_t n, const char *a) {
    int plain = *a != 0;
    for (const char *c = a; *c && plain; c++)
        plain = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                strchr("_./=:,+@%-", *c);
    n += (size_t)snprintf(out + (n < cap ? n : cap), n < cap ? cap - n : 0, plain ? " %s" : " '", a);
    if (plain) return n;
    for (const char *c = a; *c; c++)
        n += (size_t)snprintf(out + (n < cap ? n : cap), n < cap ? cap - n : 0, *c == '\'' ? "'\\''" : "%c", *c);
    return n + (size_t)snprintf(out + (n < cap ? n : cap), n < cap ? cap - n : 0, "'");
}

const char *rn_resume_command(char *out, size_t cap, int argc, char **argv) {
    if (!cap) return out;
    size_t n = (size_t)snprintf(out, cap, "ipsweep run");
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--force") != 0 && strcmp(argv[i], "--resume") != 0) n = put_arg(out, cap, n, argv[i]);
    put_arg(out, cap, n, "--resume");
    return out;
}

/* ---------------- the coordinator's progress ---------------- */

static int term_width(FILE *f) {
    struct winsize ws;
    if (ioctl(fileno(f), TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20) return ws.ws_col;
    const char *c = getenv("COLUMNS");
    int w = c ? atoi(c) : 0;
    return w >= 20 ? w : 80;
}

int rn_progress_style_parse(const char *text, rn_progress_style *out) {
    static const char *const names[] = {"auto", "bar", "lines"}; /* in enum order, as RN_PROGRESS_STYLES */
    for (int i = 0; i < 3; i++)
        if (strcmp(text, names[i]) == 0) {
            *out = (rn_progress_style)i;
            return 0;
        }
    return -1;
}

void rn_progress_set_style(rn_progress *p, rn_progress_style style) {
    if (style == RN_PROGRESS_AUTO) return; /* rn_progress_init's choice */
    p->tty = style == RN_PROGRESS_BAR;
    p->width = p->tty ? term_width(p->f) : 0;
}

int rn_progress_init(rn_progress *p, FILE *f, const rn_spec *s, const rn_status *status, const rn_sizing *z,
                     ip_err *e) {
    memset(p, 0, sizeof *p);
    p->f = f;
    p->tty = isatty(fileno(f));
    p->width = p->tty ? term_width(f) : 0;
    p->total = s->ntasks;
    p->workers = z->workers > 0 ? z->workers : 1;
    p->est = malloc(((size_t)s->ntasks + 1) * sizeof *p->est);
    p->slot = malloc(((size_t)s->ntasks + 1) * sizeof *p->slot);
    if (!p->est || !p->slot) {
        rn_progress_free(p);
        return ip_fail(e, "out of memory for the progress of %d tasks", s->ntasks);
    }
    for (int i = 0; i < s->ntasks; i++) {
        double w = rn_task_wall(&s->tasks[i], z);
        p->est[i] = (float)(w > 0 ? w : 0);
        p->slot[i] = -1;
        p->est_all += p->est[i];
        rn_status st = status ? status[i] : RN_PENDING;
        if (st != RN_DONE && st != RN_FAILED && st != RN_SKIPPED) continue;
        p->done += st == RN_DONE, p->failed += st == RN_FAILED, p->skipped += st == RN_SKIPPED;
        p->est_finished += p->est[i];
    }
    p->resumed = p->done + p->failed + p->skipped;
    p->t0 = p->last_status = p->win_t0 = ip_now_s();
    if (p->total > RN_PROGRESS_TASK_LINES) {
        p->quiet_tasks = 1;
        fprintf(f, "progress: %d tasks: one line per failed task and a status line at most every %.0f s\n", p->total,
                RN_STATUS_EVERY);
    }
    return 0;
}

void rn_progress_free(rn_progress *p) {
    free(p->est), free(p->slot), free(p->run);
    p->est = NULL, p->slot = NULL, p->run = NULL;
    p->nrun = p->caprun = 0;
}

void rn_progress_started(rn_progress *p, const rn_task *t) {
    p->running++;
    if (t->id < 0 || t->id >= p->total || p->slot[t->id] >= 0) return;
    if (p->nrun == p->caprun) {
        int cap = p->caprun ? 2 * p->caprun : 64;
        rn_progress_run *r = realloc(p->run, (size_t)cap * sizeof *r);
        if (!r) return; /* shown without its progress: nothing else depends on it */
        p->run = r, p->caprun = cap;
    }
    p->run[p->nrun] = (rn_progress_run){.task = t->id};
    p->slot[t->id] = p->nrun++;
}

/* Takes task off the running list; returns its entry (a copy), or NULL when it was not on it. */
static int take_running(rn_progress *p, int task, rn_progress_run *out) {
    if (task < 0 || task >= p->total || p->slot[task] < 0) return 0;
    int k = p->slot[task];
    *out = p->run[k];
    p->run[k] = p->run[--p->nrun];
    p->slot[p->run[k].task] = k;
    p->slot[task] = -1;
    return 1;
}

static void clear_line(rn_progress *p) {
    if (p->tty) fputs("\r\033[K", p->f);
}

void rn_progress_finished(rn_progress *p, const rn_task *t, const rn_result *r) {
    if (r->status == RN_DONE) p->done++;
    else if (r->status == RN_FAILED) p->failed++;
    else p->skipped++;
    if (r->status != RN_SKIPPED && p->running > 0) p->running--;
    rn_progress_run run;
    int was = take_running(p, t->id, &run);
    double est = t->id >= 0 && t->id < p->total ? p->est[t->id] : 0;
    p->est_finished += est;
    if (r->status == RN_DONE && est > 0 && r->wall_seconds >= 0) {
        /* from its first note on when it sent one (a resumed task began past 0; data loading is not its loop) */
        int from_note = was && run.noted && run.seconds0 <= r->wall_seconds;
        p->measured += r->wall_seconds - (from_note ? run.seconds0 : 0);
        p->estimated += est * (1 - (from_note ? run.fraction0 : 0));
    }
    if (r->status != RN_SKIPPED) { /* skipped tasks cost nothing: not part of a rate */
        double now = ip_now_s();
        p->win_n++;
        if (now - p->win_t0 >= RN_RATE_WINDOW) {
            double rate = p->win_n / (now - p->win_t0);
            if (p->win_n >= RN_RATE_MIN_TASKS && rate > p->peak_rate) p->peak_rate = rate;
            p->win_t0 = now, p->win_n = 0;
        }
    }
    p->changed = 1;
    if (!p->quiet_tasks || r->status != RN_DONE) {
        clear_line(p);
        int finished = p->done + p->failed + p->skipped;
        fprintf(p->f, "[%*d/%d] %-7s %s", (int)snprintf(NULL, 0, "%d", p->total), finished, p->total,
                rn_status_name(r->status), t->key);
        char took[32];
        if (r->status != RN_SKIPPED)
            fprintf(p->f, " (%s, rank %d)", rn_format_duration(r->wall_seconds, took, sizeof took), r->rank);
        if (r->status == RN_DONE) {
            /* the headline metrics, when the task has them */
            static const char *const show[] = {"test_acc", "detect", "public_test_acc", "real_acc", "fake_mean",
                                               "accepted", "p_value", "value", NULL};
            for (int i = 0; show[i]; i++)
                for (int k = 0; k < r->metrics.nscalars; k++)
                    if (strcmp(r->metrics.names[k], show[i]) == 0)
                        fprintf(p->f, " %s=%.4g", show[i], r->metrics.values[k]);
        } else {
            fprintf(p->f, ": %s", r->error);
        }
        fputc('\n', p->f);
    }
    rn_progress_status(p, 0);
}

void rn_progress_note(rn_progress *p, const rn_task_progress *n) {
    if (n->task < 0 || n->task >= p->total || p->slot[n->task] < 0) return; /* late: its result came first */
    rn_progress_run *r = &p->run[p->slot[n->task]];
    if (!r->noted || n->fraction < r->fraction0) /* the first note, or a later loop of the task from 0 again */
        r->fraction0 = (float)n->fraction, r->seconds0 = (float)n->seconds;
    r->noted = 1;
    r->fraction = (float)n->fraction, r->seconds = (float)n->seconds;
    p->changed = 1;
    rn_progress_status(p, 0);
}

void rn_progress_interrupted(rn_progress *p, const rn_task *t, const rn_result *r) {
    if (p->running > 0) p->running--;
    rn_progress_run run;
    if (take_running(p, t->id, &run) && run.noted && run.fraction > run.fraction0 && run.seconds > run.seconds0) {
        /* its state is saved, not its result: its work counts for the speed only */
        p->measured += run.seconds - run.seconds0;
        p->estimated += p->est[t->id] * (run.fraction - run.fraction0);
    }
    clear_line(p);
    fprintf(p->f, "interrupted %s (rank %d): %s\n", t->key, r->rank, r->error);
}

/* The fraction of the estimated work done (finished tasks and the done part of running ones): the bar. */
static double work_done(const rn_progress *p) {
    int finished = p->done + p->failed + p->skipped;
    if (!(p->est_all > 0)) return p->total ? (double)finished / p->total : 1;
    double d = p->est_finished;
    for (int k = 0; k < p->nrun; k++) d += (double)p->est[p->run[k].task] * p->run[k].fraction;
    d /= p->est_all;
    return d < 0 ? 0 : d > 1 ? 1 : d;
}

static double eta_now(const rn_progress *p, double now, int *measured) {
    int finished = p->done + p->failed + p->skipped;
    rn_eta_in in = {.left = p->est_all - p->est_finished, .measured = p->measured, .estimated = p->estimated,
                    .workers = p->workers, .tasks_left = p->total - finished,
                    .tasks_done = finished - p->resumed, .elapsed = now - p->t0, .peak_rate = p->peak_rate};
    for (int k = 0; k < p->nrun; k++) {
        const rn_progress_run *r = &p->run[k];
        double est = p->est[r->task], rest = est * (1 - r->fraction);
        in.left -= est * r->fraction;
        if (rest > in.longest) in.longest = rest;
        if (r->noted && r->fraction > r->fraction0 && r->seconds > r->seconds0) {
            in.measured += r->seconds - r->seconds0;
            in.estimated += est * (r->fraction - r->fraction0);
        }
    }
    if (in.left < 0) in.left = 0;
    *measured = in.estimated > 0;
    return rn_eta_seconds(&in);
}

const char *rn_progress_line(const rn_progress *p, double now, int bar, char *out, size_t cap) {
    int finished = p->done + p->failed + p->skipped, measured = 0;
    double el = now - p->t0, rate = el > 0 ? (finished - p->resumed) / el : 0, work = 100 * work_done(p);
    double eta = eta_now(p, now, &measured);
    char counts[192], e1[32], e2[48];
    size_t n = (size_t)snprintf(counts, sizeof counts, "%d/%d done, %d failed, %d skipped, %d running", p->done,
                                p->total, p->failed, p->skipped, p->nrun);
    int shown = 0, noted = 0;
    for (int k = 0; k < p->nrun; k++) /* the running tasks' own progress, the first few */
        if (p->run[k].noted && noted++ < 4)
            n += (size_t)snprintf(counts + n, sizeof counts - n, "%s%.0f%%", shown++ ? ", " : " (",
                                  100.0 * p->run[k].fraction);
    if (shown) snprintf(counts + n, sizeof counts - n, "%s)", noted > shown ? ", ..." : "");
    rn_format_hms(el, e1, sizeof e1);
    rn_format_hms(eta, e2, sizeof e2);
    if (!measured && eta > 0) strcat(e2, " (cost model)");
    if (bar) /* what matters first: a narrow terminal cuts the end */
        snprintf(out, cap, "%.0f%% ETA %s | %s | elapsed %s | %.3g tasks/s", work, e2, counts, e1, rate);
    else
        snprintf(out, cap, "%s | %.0f%% of the work | ETA %s | elapsed %s | %.3g tasks/s", counts, work, e2, e1,
                 rate);
    return out;
}

void rn_progress_status(rn_progress *p, int force) {
    double t = ip_now_s(), since = t - p->last_status;
    if (!force) {
        if (p->tty && since < RN_STATUS_REDRAW) return;
        /* a long run's log gets fewer lines: every 5 s at first, every minute after 100 minutes */
        double every = (t - p->t0) / 100;
        every = every < RN_STATUS_EVERY ? RN_STATUS_EVERY : every > RN_STATUS_QUIET ? RN_STATUS_QUIET : every;
        if (!p->tty && !(p->changed && since >= every) && since < RN_STATUS_QUIET) return;
    }
    p->last_status = t;
    p->changed = 0;
    char line[512];
    rn_progress_line(p, t, p->tty, line, sizeof line);
    if (!p->tty) {
        fprintf(p->f, "status: %s\n", line);
    } else { /* a bar, then as much of the line as the terminal holds (a wrapped line cannot be redrawn) */
        enum { BAR = 20 };
        char bar[BAR + 1];
        int fill = (int)(work_done(p) * BAR);
        for (int i = 0; i < BAR; i++) bar[i] = i < fill ? '#' : '.';
        bar[BAR] = 0;
        char text[640];
        int len = snprintf(text, sizeof text, "[%s] %s", bar, line);
        if (len > p->width - 1) text[p->width - 1 < (int)sizeof text ? p->width - 1 : (int)sizeof text - 1] = 0;
        fputs("\r\033[K", p->f);
        fputs(text, p->f);
    }
    fflush(p->f);
}

void rn_progress_summary(rn_progress *p) {
    rn_progress_status(p, 1);
    if (p->tty) fputc('\n', p->f);
}
