/* Command-line options from a kind's parameter table (task_cli.h). */
#include "task_cli.h"

#include "../spec/suggest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unistd.h>

#include "signals.h"
#include "../run/cache_setup.h"
#include "../run/progress.h"
#include "../../core/io/resume.h"
#include "../../core/util/proc.h"
#include "../../core/util/progress.h"
#include "../../core/util/stop.h"

/* the value a given-or-not check looks for: no argument can contain it */
#define UNSET "\x01"

/* What --help shows for a key's argument. */
static const char *metavar(const ip_param *p) {
    switch (p->type) {
    case IP_P_INT: return "N";
    case IP_P_FLOAT: return "X";
    case IP_P_ENUM: return strlen(p->choices) < 24 ? p->choices : "NAME";
    case IP_P_MODEL:
    case IP_P_FINGERPRINT: return "FILE.h5";
    case IP_P_COPIES:
    case IP_P_OTHERS: return "FILE.h5,...";
    case IP_P_INTLIST: return "N,N";
    default: return "TEXT";
    }
}

void rn_task_cli_init(rn_task_cli *tc, const ip_task_def *d) {
    memset(tc, 0, sizeof *tc);
    tc->d = d;
    for (int q = 0; q < d->nparams && q < RN_MAX_KEYS; q++) {
        const ip_param *p = &d->params[q];
        snprintf(tc->optname[q], sizeof tc->optname[q], "%s", p->name);
        for (char *c = tc->optname[q]; *c; c++)
            if (*c == '_') *c = '-';
        char def[160] = "";
        if (!p->def) snprintf(def, sizeof def, " (required)");
        else if (p->def[0] && p->type != IP_P_BOOL) snprintf(def, sizeof def, " (default %s)", p->def);
        snprintf(tc->help[q], sizeof tc->help[q], "%s%s", p->doc, def);
        cli_opt *o = &tc->opts[tc->nopts++];
        o->name = tc->optname[q];
        o->help = tc->help[q];
        if (p->type == IP_P_BOOL) {
            o->type = CLI_FLAG, o->ptr = &tc->flag[q];
            continue;
        }
        o->type = CLI_STR, o->ptr = tc->text[q], o->cap = sizeof tc->text[q];
        snprintf(tc->text[q], sizeof tc->text[q], UNSET);
        o->metavar = metavar(p);
    }
    if (d->at_data)
        tc->opts[tc->nopts++] = (cli_opt){"data", CLI_STR, tc->data, sizeof tc->data, "KIND:PATH",
                                          "data source (required): fashion-mnist:DIR, mnist:DIR, cifar10:DIR, "
                                          "cifar100:DIR, synthetic:N"};
    if (d->at_train_limit)
        tc->opts[tc->nopts++] = (cli_opt){"train-limit", CLI_SIZE, &tc->train_limit, 0, "N",
                                          "use the first N training images (default all)"};
    if (d->at_test_limit)
        tc->opts[tc->nopts++] = (cli_opt){"test-limit", CLI_SIZE, &tc->test_limit, 0, "N",
                                          "use the first N test images (default all)"};
    if (d->at_out)
        tc->opts[tc->nopts++] = (cli_opt){"out", CLI_STR, tc->out, sizeof tc->out, "FILE.h5",
                                          "output file to write (atomically)"};
    if (d->at_resume) {
        tc->checkpoint_every = IP_CHECKPOINT_EVERY_DEFAULT;
        tc->opts[tc->nopts++] = (cli_opt){"state", CLI_STR, tc->state, sizeof tc->state, "FILE",
                                          "where the task saves its state to resume after a stop "
                                          "(default: <out>.state; none without --out)"};
        tc->opts[tc->nopts++] = (cli_opt){"checkpoint-every", CLI_FLOAT, &tc->checkpoint_every, 0, "S",
                                          "seconds between saves of its state (default " IP_CHECKPOINT_EVERY_TEXT ")"};
    }
}

void rn_task_cli_add(rn_task_cli *tc, cli_opt o) {
    if (tc->nopts < (int)(sizeof tc->opts / sizeof *tc->opts)) tc->opts[tc->nopts++] = o;
}


/* unknown --arch "resnet" (did you mean resnet18-p?) */
static int enum_error(const char *cmd, const char *opt, const ip_param *p, const char *given) {
    char buf[512], list[600] = "";
    const char *cands[32];
    int n = 0;
    snprintf(buf, sizeof buf, "%s", p->choices);
    char *save = NULL;
    for (char *c = strtok_r(buf, "|", &save); c && n < 32; c = strtok_r(NULL, "|", &save)) {
        size_t l = strlen(list);
        snprintf(list + l, sizeof list - l, "%s%s", n ? ", " : "", c);
        cands[n++] = c;
    }
    const char *s = rn_suggest(given, cands, n);
    if (s) return cli_error(cmd, "unknown --%s \"%s\" (did you mean %s?)", opt, given, s);
    return cli_error(cmd, "unknown --%s \"%s\" (choices: %s)", opt, given, list);
}

int rn_task_cli_fill(const rn_task_cli *tc, const char *cmd, void *task) {
    const ip_task_def *d = tc->d;
    ip_task_defaults(d, task);
    uint64_t seed = 1;
    for (int q = 0; q < d->nparams && q < RN_MAX_KEYS; q++) {
        const ip_param *p = &d->params[q];
        ip_value v;
        int32_t list[1 + IP_MAX_INT_LIST];
        char msg[400];
        if (p->type == IP_P_BOOL) {
            if (!tc->flag[q]) continue;
            ip_value_parse(p, "true", &v, list, msg, sizeof msg);
        } else if (strcmp(tc->text[q], UNSET) == 0) {
            if (!p->def) return cli_error(cmd, "--%s is required (%s)", tc->optname[q], p->doc);
            continue;
        } else if (ip_value_parse(p, tc->text[q], &v, list, msg, sizeof msg) != 0) {
            if (p->type == IP_P_ENUM) return enum_error(cmd, tc->optname[q], p, tc->text[q]);
            if (strncmp(msg, "expected ", 9) == 0) return cli_error(cmd, "--%s expects %s", tc->optname[q], msg + 9);
            return cli_error(cmd, "--%s: %s", tc->optname[q], msg);
        }
        ip_err e = {{0}};
        if (ip_param_store(p, &v, task, &e) != 0) return cli_error(cmd, "--%s: %s", tc->optname[q], e.msg);
        if (!strcmp(p->name, "seed") && p->field == IP_F_NONE) seed = (uint64_t)v.u.i;
    }
    if (d->at_data && !tc->data[0])
        return cli_error(cmd, "--data is required (e.g. fashion-mnist:/usr/share/datasets/fashion-mnist)");
    ip_err pe = {{0}};
    if (ip_task_place(d, task, tc->data, tc->train_limit, tc->test_limit, tc->out, seed, &pe) != 0)
        return cli_error(cmd, "%s", pe.msg);
    if (d->at_resume) {
        if (!(tc->checkpoint_every >= 1 && tc->checkpoint_every <= IP_CHECKPOINT_EVERY_MAX))
            return cli_error(cmd, "--checkpoint-every must be between 1 and %d seconds", IP_CHECKPOINT_EVERY_MAX);
        char state[RN_PATH_LEN + 8] = "";
        if (tc->state[0]) snprintf(state, sizeof state, "%s", tc->state);
        else if (tc->out[0]) snprintf(state, sizeof state, "%s.state", tc->out);
        if (ip_task_place_resume(d, task, state, tc->checkpoint_every, &pe) != 0) return cli_error(cmd, "%s", pe.msg);
    }
    const char *key = NULL;
    char msg[400];
    if (d->check && d->check(task, NULL, &key, msg, sizeof msg) != 0) return cli_error(cmd, "%s", msg);
    return CLI_OK;
}

/* On a terminal, the task's progress notes (core/util/progress.h) as a bar
 * redrawn in place on stderr: how far its current loop is, and the time
 * since it began. Nothing in a log. The cursor goes back to the line's start
 * after it, so a line the task prints (train's epoch lines) overwrites it. */
typedef struct task_bar {
    const char *cmd;
    double t0;
    int drawn;
} task_bar;

static void bar_note(void *user, double fraction) {
    task_bar *b = user;
    char bar[21], el[32];
    int fill = (int)(fraction * 20 + 0.5);
    for (int i = 0; i < 20; i++) bar[i] = i < fill ? '#' : '.';
    bar[20] = 0;
    fprintf(stderr, "\r\033[K[%s] %3.0f%% | elapsed %s | ipsweep %s\r", bar, 100 * fraction,
            rn_format_hms(ip_now_s() - b->t0, el, sizeof el), b->cmd);
    fflush(stderr);
    b->drawn = 1;
}

int rn_task_cli_run(const ip_task_def *d, const void *task, const char *cmd) {
    rn_signals_install(1);
    ip_err e = {{0}};
    if (rn_eval_records_setup(&e) != 0) {
        fprintf(stderr, "ipsweep %s: %s\n", cmd, e.msg);
        return 2;
    }
    ip_metrics mt;
    ip_metrics_init(&mt);
    task_bar bar = {cmd, ip_now_s(), 0};
    if (isatty(STDERR_FILENO)) ip_progress_set_hook(bar_note, &bar, 0.2);
    int rc = d->run(task, &mt, &e);
    ip_progress_set_hook(NULL, NULL, 0);
    if (bar.drawn) fputs("\r\033[K", stderr);
    if (rc != 0) {
        fprintf(stderr, "ipsweep %s: %s\n", cmd, e.msg);
        if (ip_err_is_interrupted(&e))
            fprintf(stderr, "ipsweep %s: stopped by %s; run the same command again to continue%s\n", cmd,
                    rn_signal_name(ip_stop_signal()), ip_task_resume(d, (void *)task) &&
                    ip_task_resume(d, (void *)task)->path[0] ? " from the saved state" : " (it starts over: no --state)");
        ip_metrics_free(&mt);
        return ip_err_exit_code(&e);
    }
    ip_metrics_print(&mt, stdout);
    ip_metrics_free(&mt);
    return 0;
}
