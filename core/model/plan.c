/* Planning a model's memory for a batch size: the activation arena, the
 * activation-gradient arena and the conv workspace (model.h), which a fused
 * group-norm tail's backward borrows for its sums (no conv runs meanwhile).
 *
 * Activations: every activation a forward pass writes has its own slot, since
 * backward reads them all, except the insides of a fused conv-block tail
 * (graph.h): its norm's xhat, and in a norm-affine-pool group the affine's
 * output, are never written (the tail pools in registers and its backward
 * recomputes them from the input), so they have none.
 *
 * Gradients: the gradient of activation a lives only from the backward step of
 * its last reader (which zeroes or writes it) to the step of the op that
 * produced it (which reads it). Two gradients whose lifetimes do not overlap
 * share memory, placed first-fit by decreasing size: on resnet18-p a handful
 * of activations' worth instead of one per activation (docs/performance.md,
 * "Memory"). The arithmetic is untouched, so results are bit-identical.
 *
 * Forward-only users (eval, prune, match: most small tasks) need neither the
 * gradients nor zeroed memory, and faulting in and zeroing the two arenas was
 * a fifth of such a task's CPU. So ip_model_plan allocates only what a forward
 * pass writes, without zeroing it (a forward writes every value it or a
 * backward reads: tests/test_plan_eval.c fills the arenas with garbage and
 * checks every result against zeroed ones), and the gradient arena is
 * allocated by ip_model_plan_backward, at the first backward at the latest. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "graph.h"
#include "model.h"

#define ALIGN_FLOATS 16 /* 64-byte aligned starts */

static size_t align_up(size_t x) { return (x + ALIGN_FLOATS - 1) & ~(size_t)(ALIGN_FLOATS - 1); }

int ip_model_set_conv(ip_model *m, int algo, ip_err *e) {
    if ((unsigned)algo > IP_CONV_REFERENCE) return ip_fail_input(e, "bad conv algorithm %d", algo);
    m->cfg.conv = algo;
    size_t work = 0;
    for (int i = 0; i < m->nops; i++)
        if (m->ops[i].kind == IP_OP_CONV) {
            m->ops[i].conv.algo = algo;
            size_t w = ip_conv_workspace_floats(&m->ops[i].conv);
            if (w > work) work = w;
        }
    if (!m->batch || work <= m->work_floats) return 0;
    /* only the workspace grows: the activations of a forward stay valid */
    float *nw = aligned_alloc(64, ((work + 15) & ~(size_t)15) * sizeof(float) + 64);
    if (!nw) return ip_fail(e, "out of memory for a conv workspace of %zu floats", work);
    free(m->work);
    m->work = nw, m->work_floats = work;
    return 0;
}

/* Whether activation a is internal to a fused tail: the norm's xhat or, in a
 * norm-affine-pool group, the affine's output. Neither is written, and
 * neither has a gradient (the tail goes from dpooled or dy to dx). */
static int is_tail_internal(const ip_model *m, int a) {
    for (int i = 0; i < m->nops; i++) {
        int len = ip_graph_tail_len(m, i);
        if (len && m->ops[i].out == a) return 1;
        if (len == 3 && m->ops[i + 1].out == a) return 1;
    }
    return 0;
}

/* Backward steps (op indices, see ip_graph_step) during which a's gradient
 * is live, [lo, hi]. The input's gradient is read after the last step (-1);
 * the logits' is written before the first (nops); an activation nobody reads
 * keeps a zero gradient for the whole pass (its producer reads it). */
static void grad_life(const ip_model *m, int a, int *lo, int *hi) {
    int prod = ip_model_producer(m, a);
    int last = ip_graph_last_reader(m, a);
    *lo = prod < 0 ? -1 : ip_graph_step(m, prod);
    *hi = last < 0 ? m->nops : ip_graph_step(m, last);
    if (last < 0 && a != m->ops[m->nops - 1].out) *lo = -1; /* never shared: stays zero */
}

/* First-fit placement of the gradients in darena; returns its size in floats. */
static size_t place_gradients(ip_model *m, int batch) {
    int order[IP_MAX_ACTS], lo[IP_MAX_ACTS], hi[IP_MAX_ACTS], n = 0;
    size_t len[IP_MAX_ACTS];
    for (int a = 0; a < m->nacts; a++) {
        const ip_act *x = &m->acts[a];
        len[a] = align_up((size_t)x->c * x->h * x->w * (size_t)batch);
        m->acts[a].doff = 0;
        if (is_tail_internal(m, a)) continue;
        grad_life(m, a, &lo[a], &hi[a]);
        order[n++] = a;
    }
    for (int i = 1; i < n; i++) /* by decreasing size, then index: deterministic */
        for (int j = i; j > 0 && len[order[j]] > len[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        int a = order[i];
        size_t off = 0;
        for (int again = 1; again;) { /* lowest offset clear of every live-overlapping placed gradient */
            again = 0;
            for (int j = 0; j < i; j++) {
                int b = order[j];
                if (lo[b] > hi[a] || lo[a] > hi[b]) continue; /* lifetimes disjoint */
                size_t bo = m->acts[b].doff, be = bo + len[b];
                if (off < be && bo < off + len[a]) off = be, again = 1;
            }
        }
        m->acts[a].doff = off;
        if (off + len[a] > total) total = off + len[a];
    }
    return total ? total : ALIGN_FLOATS;
}

/* A gradient that no backward step writes: an activation nobody reads (other
 * than the logits, whose gradient the backward copies in) keeps a zero
 * gradient, which its producer reads (grad_life). */
static int gradient_never_written(const ip_model *m, int a) {
    return !is_tail_internal(m, a) && ip_graph_last_reader(m, a) < 0 && a != m->ops[m->nops - 1].out;
}

int ip_model_plan(ip_model *m, int batch, ip_err *e) {
    if (batch < 1) return ip_fail(e, "batch size must be positive, got %d", batch);
    free(m->arena);
    free(m->darena);
    free(m->index_arena);
    free(m->work);
    free(m->dlogits);
    m->arena = m->darena = m->work = m->dlogits = NULL;
    m->index_arena = NULL;
    m->batch = 0;
    size_t off = 0, idx = 0, work = 0;
    for (int a = 0; a < m->nacts; a++) {
        ip_act *act = &m->acts[a];
        act->stored = !is_tail_internal(m, a);
        act->off = off;
        if (act->stored) off = align_up(off + (size_t)act->c * act->h * act->w * (size_t)batch);
    }
    for (int i = 0; i < m->nops; i++) {
        ip_op *op = &m->ops[i];
        if (op->kind == IP_OP_NORM) {
            op->norm.n = batch;
            op->stats_off = off;
            off = align_up(off + 2 * ip_norm_stats(&op->norm));
            /* a fused group-norm tail's backward keeps its sums in the conv workspace */
            int len = ip_graph_tail_len(m, i);
            if (len) {
                ip_norm_tail_shape ts = ip_graph_tail_shape(m, i, len, batch);
                size_t w = 2 * norm_tail_work_doubles(&ts);
                if (w > work) work = w;
            }
        } else if (op->kind == IP_OP_POOL) {
            op->argmax_off = idx;
            idx += (size_t)op->c * batch * op->h * op->w;
        } else if (op->kind == IP_OP_CONV) {
            /* the batch multiplies into BLAS's int dimensions: recheck them */
            ip_conv_shape cs = op->conv;
            if (ip_conv_shape_init(&cs, batch, cs.cin, cs.h, cs.w, cs.cout, cs.kh, cs.kw, cs.stride, cs.pad) != 0)
                return ip_fail(e, "%s: a batch of %d inputs of %dx%d is too large for one convolution (lower the "
                                  "batch)",
                               op->name, batch, cs.h, cs.w);
            op->conv.n = batch;
            size_t w = ip_conv_workspace_floats(&op->conv);
            if (w > work) work = w;
        }
    }
    /* the gradients' layout now (its size is a fact of the plan), their memory at the first backward */
    m->darena_floats = place_gradients(m, batch);
    m->arena_floats = off;
    m->work_floats = work;
    /* not zeroed: the forward pass writes every value before anything reads it */
    m->arena = aligned_alloc(64, off * sizeof(float));
    m->index_arena = malloc((idx ? idx : 1) * sizeof(uint32_t));
    m->work = aligned_alloc(64, ((work + 15) & ~(size_t)15) * sizeof(float) + 64);
    m->dlogits = malloc((size_t)batch * m->cfg.classes * sizeof(float));
    if (!m->arena || !m->index_arena || !m->work || !m->dlogits) {
        free(m->arena), free(m->index_arena), free(m->work), free(m->dlogits);
        m->arena = m->work = m->dlogits = NULL;
        m->index_arena = NULL;
        return ip_fail(e, "out of memory planning activations for batch %d (%.1f MB)", batch, (double)off * 4 / 1e6);
    }
    m->batch = batch;
    return 0;
}

int ip_model_plan_backward(ip_model *m, ip_err *e) {
    if (m->batch < 1) return ip_fail(e, "the model is not planned");
    if (m->darena) return 0;
    /* darena_floats is a multiple of ALIGN_FLOATS: a size aligned_alloc accepts */
    m->darena = aligned_alloc(64, m->darena_floats * sizeof(float));
    if (!m->darena)
        return ip_fail(e, "out of memory for the activation gradients of batch %d (%.1f MB)", m->batch,
                       (double)m->darena_floats * 4 / 1e6);
    /* not zeroed: each backward step zeroes or overwrites a gradient before reading it, except these */
    for (int a = 0; a < m->nacts; a++)
        if (gradient_never_written(m, a)) {
            const ip_act *x = &m->acts[a];
            memset(m->darena + x->doff, 0, (size_t)x->c * x->h * x->w * (size_t)m->batch * sizeof(float));
        }
    return 0;
}
