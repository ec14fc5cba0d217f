/* `ipsweep run --dry-run`: the expanded tasks with their estimates, the
 * totals, and the sizing warnings (sizing.h). Estimates are wall times with
 * the threads each task runs with (rn_task_wall); "core-seconds" are the
 * kinds' one-core costs (runner/kinds/cost.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "../kinds/cost.h"
#include "sizing.h"

void rn_print_dry_run(const rn_spec *s, const rn_sizing *z) {
    printf("spec %s: %d tasks, results -> %s\n", s->name, s->ntasks, s->output);
    double total = 0, walls = 0, critical = 0;
    double *path = calloc((size_t)s->ntasks + 1, sizeof *path);
    char a[48], b[48];
    for (int i = 0; i < s->ntasks; i++) {
        const rn_task *t = &s->tasks[i];
        double w = rn_task_wall(t, z), start = 0;
        for (int d = 0; path && d < t->ndeps; d++)
            if (path[t->deps[d]] > start) start = path[t->deps[d]];
        if (path) path[i] = start + w;
        if (path && path[i] > critical) critical = path[i];
        total += t->cost;
        walls += w;
        printf("  #%-5d %-10s est %11s  %s", i, t->kind, rn_format_duration(w, a, sizeof a), t->key);
        if (t->threads) printf("  (%d thread%s)", t->threads, t->threads == 1 ? "" : "s");
        if (t->ndeps) {
            printf("  <- ");
            for (int d = 0; d < t->ndeps; d++) printf("%s#%d", d ? "," : "", t->deps[d]);
        }
        putchar('\n');
    }
    free(path);
    printf("tasks by kind:");
    for (int k = 0; rn_kinds[k]; k++) {
        int n = 0;
        double w = 0;
        for (int i = 0; i < s->ntasks; i++)
            if (s->tasks[i].k == rn_kinds[k]) n++, w += rn_task_wall(&s->tasks[i], z);
        if (n) printf(" %s=%d (%s)", rn_kinds[k]->def->name, n, rn_format_duration(w, a, sizeof a));
    }
    double wall = fmax(walls / z->workers, critical);
    printf("\nestimated cost: %.0f core-seconds (%.2f core-hours) on one core each; %s of tasks with %d thread%s "
           "per rank (%d core%s)\n",
           total, total / 3600, rn_format_duration(walls, a, sizeof a), z->threads, z->threads == 1 ? "" : "s",
           z->cores, z->cores == 1 ? "" : "s");
    printf("estimated wall: ~%s with %d worker%s; critical path %s\n", rn_format_duration(wall, a, sizeof a),
           z->workers, z->workers == 1 ? "" : "s", rn_format_duration(critical, b, sizeof b));
    fflush(stdout); /* before the warnings on stderr, when both go to one terminal or file */
    int gn = 0;
    for (int i = 0; i < s->ntasks; i++) gn += rn_task_group_norm(&s->tasks[i], &z->ctx);
    if (gn)
        fprintf(stderr, "note: %d of the %d tasks train or use group-norm models, which the cost model times as "
                "batch-norm ones: they may take longer than estimated (docs/performance.md \"Cost model\")\n",
                gn, s->ntasks);
    rn_sizing_report(s, z, NULL, stderr);
}
