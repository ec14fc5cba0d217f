#include "progress.h"
#include "sizing.h"
#include "../../core/util/proc.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

void rn_progress_init(rn_progress *p, FILE *f, int total, int already_done) {
    memset(p, 0, sizeof *p);
    p->f = f;
    p->tty = isatty(fileno(f));
    p->total = total;
    p->resumed = already_done;
    p->done = already_done;
    p->t0 = p->last_status = ip_now_s();
    p->interval = 30;
    if (total > RN_PROGRESS_TASK_LINES) {
        p->quiet_tasks = 1;
        p->interval = 10;
        fprintf(f, "progress: %d tasks: one line per failed task and a status line every %.0f s\n", total,
                p->interval);
    }
}

void rn_progress_started(rn_progress *p) { p->running++; }

static void clear_line(rn_progress *p) {
    if (p->tty) fputs("\r\033[K", p->f);
}

void rn_progress_finished(rn_progress *p, const rn_task *t, const rn_result *r) {
    if (r->status == RN_DONE) p->done++;
    else if (r->status == RN_FAILED) p->failed++;
    else p->skipped++;
    if (r->status != RN_SKIPPED && p->running > 0) p->running--;
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

void rn_progress_interrupted(rn_progress *p, const rn_task *t, const rn_result *r) {
    if (p->running > 0) p->running--;
    clear_line(p);
    fprintf(p->f, "interrupted %s (rank %d): %s\n", t->key, r->rank, r->error);
}

void rn_progress_status(rn_progress *p, int force) {
    double t = ip_now_s();
    if (!force && !p->tty && t - p->last_status < p->interval) return;
    if (!force && p->tty && t - p->last_status < 0.2) return;
    p->last_status = t;
    int finished = p->done + p->failed + p->skipped;
    int fresh = finished - p->resumed;
    double el = t - p->t0, rate = el > 0 ? fresh / el : 0;
    char eta[32], elapsed[32];
    rn_format_duration(rate > 0 ? (p->total - finished) / rate : -1, eta, sizeof eta);
    rn_format_duration(el, elapsed, sizeof elapsed);
    clear_line(p);
    if (p->tty) {
        int width = 24, fill = p->total ? (int)((double)finished / p->total * width) : width;
        fputc('[', p->f);
        for (int i = 0; i < width; i++) fputc(i < fill ? '#' : '.', p->f);
        fputs("] ", p->f);
    }
    fprintf(p->f, "%d/%d done, %d running, %d failed, %d skipped | %.3g tasks/s | elapsed %s | ETA %s",
            p->done, p->total, p->running, p->failed, p->skipped, rate, elapsed, eta);
    if (!p->tty) fputc('\n', p->f);
    fflush(p->f);
}

void rn_progress_summary(rn_progress *p) {
    rn_progress_status(p, 1);
    if (p->tty) fputc('\n', p->f);
}
