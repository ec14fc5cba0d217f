/* `ipsweep train` and `ipsweep eval`: thin wrappers over the task code
 * (core/tasks.h) that the runner's workers call too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/tasks.h"
#include "../core/trigger.h"
#include "cli.h"
#include "commands.h"

/* "100,150" -> milestones */
static int parse_milestones(const char *s, ip_optim_cfg *o) {
    o->nmilestones = 0;
    while (*s) {
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < 1 || o->nmilestones >= IP_MAX_MILESTONES) return -1;
        o->milestones[o->nmilestones++] = (int)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return 0;
}

int cmd_train(int argc, char **argv) {
    ip_train_task t;
    ip_train_task_defaults(&t);
    char norm[8] = "bn", scheme[16] = "baseline", optimizer[8] = "sgd", milestones[64] = "";
    int threads = 0, quiet = 0;
    float lr = -1, momentum = 0.9f, wd = 5e-4f;
    t.train.epochs = 2;
    cli_opt opts[] = {
        {"arch", CLI_STR, t.model.arch, sizeof t.model.arch, "NAME", "small-p | small-p-narrow | small-p-wide | alexnet-p | resnet18-p"},
        {"norm", CLI_STR, norm, sizeof norm, "bn|gn", "normalisation (default bn)"},
        {"scheme", CLI_STR, scheme, sizeof scheme, "S", "baseline | v1 | v2 | v3 (default baseline)"},
        {"passport-layers", CLI_STR, t.model.passport_layers, sizeof t.model.passport_layers, "LIST",
         "default | none | comma list of blocks, e.g. block1,block2"},
        {"signature", CLI_STR, t.signature, sizeof t.signature, "TEXT", "text embedded in each passport layer"},
        {"triggers", CLI_SIZE, &t.triggers, 0, "N", "v3: trigger set size (default 100, docs/passports.md)"},
        {"data", CLI_STR, t.data, sizeof t.data, "KIND:PATH", "fashion-mnist:DIR, mnist:DIR, cifar10:DIR, cifar100:DIR, synthetic:N"},
        {"train-limit", CLI_SIZE, &t.train_limit, 0, "N", "use the first N training images (default all)"},
        {"test-limit", CLI_SIZE, &t.test_limit, 0, "N", "use the first N test images (default all)"},
        {"epochs", CLI_INT, &t.train.epochs, 0, "N", "epochs (default 2)"},
        {"batch", CLI_INT, &t.train.batch, 0, "N", "minibatch size (default 64)"},
        {"optimizer", CLI_STR, optimizer, sizeof optimizer, "sgd|adam", "optimiser (default sgd)"},
        {"lr", CLI_FLOAT, &lr, 0, "X", "learning rate (default 0.01 sgd, 0.001 adam)"},
        {"momentum", CLI_FLOAT, &momentum, 0, "X", "SGD momentum (default 0.9)"},
        {"wd", CLI_FLOAT, &wd, 0, "X", "weight decay (default 5e-4)"},
        {"milestones", CLI_STR, milestones, sizeof milestones, "E1,E2", "epochs where lr is multiplied by 0.1"},
        {"augment", CLI_FLAG, &t.train.augment, 0, NULL, "random crop (pad 4) + horizontal flip"},
        {"seed", CLI_U64, &t.seed, 0, "N", "seed for init, shuffling, augmentation (default 1)"},
        {"out", CLI_STR, t.out, sizeof t.out, "FILE.h5", "checkpoint to write (atomically)"},
        {"threads", CLI_INT, &threads, 0, "N", "OpenBLAS threads (default: all cores, 1 per MPI rank)"},
        {"quiet", CLI_FLAG, &quiet, 0, NULL, "no per-epoch progress on stderr"},
    };
    cli_cmd c = {"train", "ipsweep train --data KIND:PATH [options]",
                 "Trains one model, prints its metrics as key=value and saves the checkpoint.", opts,
                 (int)(sizeof opts / sizeof *opts), 0, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    if (!t.data[0]) return cli_error("train", "--data is required (e.g. fashion-mnist:/usr/share/datasets/fashion-mnist)");
    if (ip_norm_parse(norm, &t.model.norm) != 0) return cli_error("train", "--norm must be bn or gn, got \"%s\"", norm);
    if (ip_scheme_parse(scheme, &t.model.scheme) != 0)
        return cli_error("train", "--scheme must be baseline, v1, v2 or v3, got \"%s\"", scheme);
    ip_opt_kind ok;
    if (strcmp(optimizer, "sgd") == 0) ok = IP_OPT_SGD;
    else if (strcmp(optimizer, "adam") == 0) ok = IP_OPT_ADAM;
    else return cli_error("train", "--optimizer must be sgd or adam, got \"%s\"", optimizer);
    ip_optim_defaults(&t.train.opt, ok);
    if (lr > 0) t.train.opt.lr = lr;
    else if (lr != -1) return cli_error("train", "--lr must be positive");
    t.train.opt.momentum = momentum;
    t.train.opt.weight_decay = wd;
    if (parse_milestones(milestones, &t.train.opt) != 0)
        return cli_error("train", "--milestones expects increasing epochs like 100,150, got \"%s\"", milestones);
    if (t.train.epochs < 0 || t.train.batch < 1) return cli_error("train", "--epochs must be >= 0 and --batch >= 1");
    if (t.triggers < 1 || t.triggers > IP_TRIGGER_MAX_COUNT)
        return cli_error("train", "--triggers must be 1..%d", IP_TRIGGER_MAX_COUNT);
    t.train.verbose = !quiet;
    t.train.seed = t.seed;
    int nthreads = ip_set_threads(threads);
    if (!quiet)
        fprintf(stderr, "train: %s %s/%s on %s, %d epochs, batch %d, %d BLAS threads\n", t.model.arch,
                ip_scheme_name(t.model.scheme), ip_norm_name(t.model.norm), t.data, t.train.epochs, t.train.batch,
                nthreads);
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    rc = ip_task_train(&t, &mt, &e);
    if (rc != 0) {
        fprintf(stderr, "ipsweep train: %s\n", e.msg);
        ip_metrics_free(&mt);
        return ip_err_exit_code(&e);
    }
    ip_metrics_print(&mt, stdout);
    if (t.out[0] && !quiet) fprintf(stderr, "train: checkpoint written to %s\n", t.out);
    ip_metrics_free(&mt);
    return 0;
}

int cmd_eval(int argc, char **argv) {
    ip_eval_task t;
    ip_eval_task_defaults(&t);
    char branch[16] = "";
    int threads = 0;
    cli_opt opts[] = {
        {"model", CLI_STR, t.model_path, sizeof t.model_path, "FILE.h5", "checkpoint to evaluate"},
        {"data", CLI_STR, t.data, sizeof t.data, "KIND:PATH", "dataset source (its test split is used)"},
        {"test-limit", CLI_SIZE, &t.test_limit, 0, "N", "use the first N test images (default all)"},
        {"batch", CLI_INT, &t.batch, 0, "N", "evaluation batch (default 256)"},
        {"branch", CLI_STR, branch, sizeof branch, "private|public", "passport branch for v2/v3 models (default private)"},
        {"predictions", CLI_STR, t.predictions, sizeof t.predictions, "FILE", "write one predicted label per line"},
        {"threads", CLI_INT, &threads, 0, "N", "OpenBLAS threads"},
    };
    cli_cmd c = {"eval", "ipsweep eval --model FILE.h5 --data KIND:PATH [options]",
                 "Evaluates a checkpoint on a dataset's test split and prints test_acc (and, for passport\n"
                 "models, the signature detection rate) as key=value.",
                 opts, (int)(sizeof opts / sizeof *opts), 0, {0}, 0};
    int rc = cli_parse(&c, argc, argv);
    if (rc != CLI_OK) return rc == CLI_HELP ? 0 : 2;
    if (!t.model_path[0] || !t.data[0]) return cli_error("eval", "--model and --data are required");
    if (t.batch < 1) return cli_error("eval", "--batch must be >= 1");
    if (branch[0]) {
        if (strcmp(branch, "private") == 0) t.branch = IP_BRANCH_PRIVATE;
        else if (strcmp(branch, "public") == 0) t.branch = IP_BRANCH_PUBLIC;
        else return cli_error("eval", "--branch must be private or public, got \"%s\"", branch);
    }
    ip_set_threads(threads);
    ip_metrics mt;
    ip_metrics_init(&mt);
    ip_err e = {{0}};
    if (ip_task_eval(&t, &mt, &e) != 0) {
        fprintf(stderr, "ipsweep eval: %s\n", e.msg);
        ip_metrics_free(&mt);
        return ip_err_exit_code(&e);
    }
    ip_metrics_print(&mt, stdout);
    ip_metrics_free(&mt);
    return 0;
}
