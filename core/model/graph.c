/* Readers and fused groups of a model's op list (graph.h). */
#include "graph.h"

int ip_graph_readers(const ip_model *m, int a) {
    int r = 0;
    for (int i = 0; i < m->nops; i++) r += (m->ops[i].in == a) + (m->ops[i].in2 == a);
    return r;
}

int ip_model_producer(const ip_model *m, int a) {
    int prod = -1;
    for (int i = 0; i < m->nops; i++)
        if (m->ops[i].out == a) prod = i;
    return prod;
}

int ip_graph_last_reader(const ip_model *m, int a) {
    for (int i = m->nops - 1; i >= 0; i--)
        if (m->ops[i].in == a || m->ops[i].in2 == a) return i;
    return -1;
}

int ip_graph_tail_len(const ip_model *m, int i) {
    if (i < 0 || i >= m->nops) return 0;
    const ip_op *op = &m->ops[i];
    if (op->kind != IP_OP_NORM || i + 1 >= m->nops) return 0;
    const ip_op *aff = op + 1;
    if (aff->kind != IP_OP_AFFINE || aff->in != op->out || ip_graph_readers(m, op->out) != 1) return 0;
    if (i + 2 < m->nops) {
        const ip_op *pool = op + 2;
        if (pool->kind == IP_OP_POOL && pool->in == aff->out && ip_graph_readers(m, aff->out) == 1 && aff->h >= 2 &&
            aff->w >= 2)
            return 3;
    }
    return 2;
}

ip_norm_tail_shape ip_graph_tail_shape(const ip_model *m, int head, int len, int n) {
    const ip_op *aff = &m->ops[head + 1];
    return (ip_norm_tail_shape){aff->c, n, aff->h, aff->w, aff->relu, len == 3, m->ops[head].norm.groups};
}

int ip_graph_tail_head(const ip_model *m, int i) {
    if (i >= 2 && ip_graph_tail_len(m, i - 2) == 3) return i - 2;
    if (i >= 1 && ip_graph_tail_len(m, i - 1) == 2) return i - 1;
    return -1;
}

int ip_graph_step(const ip_model *m, int i) {
    if (ip_graph_tail_len(m, i)) return i;
    int h = ip_graph_tail_head(m, i);
    if (h >= 0) return h;
    /* the middle op (affine) of a 3-op group */
    if (i >= 1 && ip_graph_tail_len(m, i - 1) == 3) return i - 1;
    return i;
}
