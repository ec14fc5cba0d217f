/* Thread-count-independent SGEMM on the ip_par_for pool (see gemm.h). */
#include "gemm.h"

#include <string.h>

#include "../util/par.h"

/* A block is worth handing to another thread from ~8 MFLOP (~0.1 ms on one
 * core); narrower than 64 columns/rows, packing the shared operand again for
 * every block costs more than the parallelism gains; 64 blocks balance any
 * thread count up to par.c's cap. Bounds are rounded to 16 (the widest SGEMM
 * micro-kernel), so blocks start on kernel tiles. */
#define GEMM_BLOCK_FLOPS 8e6
#define GEMM_MIN_WIDTH 64
#define GEMM_MAX_BLOCKS 64
#define GEMM_ALIGN 16

/* Which dimension is cut: the larger one, so the operand every block packs
 * again (A for column blocks, B for row blocks) is the smaller. */
static int split_columns(int M, int N) { return N >= M; }

int ip_sgemm_blocks(int M, int N, int K) {
    if (M <= 0 || N <= 0 || K <= 0) return 1;
    double flops = 2.0 * M * N * K;
    int dim = split_columns(M, N) ? N : M;
    double by_flops = flops / GEMM_BLOCK_FLOPS;
    int by_width = dim / GEMM_MIN_WIDTH;
    int nb = by_flops < GEMM_MAX_BLOCKS ? (int)by_flops : GEMM_MAX_BLOCKS;
    if (nb > by_width) nb = by_width;
    return nb < 1 ? 1 : nb;
}

/* Start of block b of nb over [0, dim): a multiple of GEMM_ALIGN, the last ends at dim. */
static int block_start(int dim, int nb, int b) {
    if (b >= nb) return dim;
    long long s = (long long)dim * b / nb;
    return (int)(s / GEMM_ALIGN * GEMM_ALIGN);
}

typedef struct {
    enum CBLAS_TRANSPOSE ta, tb;
    int M, N, K, lda, ldb, ldc, nb, cols;
    float alpha, beta;
    const float *A, *B;
    float *C;
} gemm_job;

static void gemm_blocks(void *p, size_t b0, size_t b1) {
    const gemm_job *j = p;
    for (size_t b = b0; b < b1; b++) {
        const int dim = j->cols ? j->N : j->M;
        const int s = block_start(dim, j->nb, (int)b), w = block_start(dim, j->nb, (int)b + 1) - s;
        if (w <= 0) continue;
        /* beta = 0: C's block cleared here and accumulated into (beta = 1).
         * OpenBLAS's Haswell/Zen kernels clear it themselves with one scalar
         * store per float (sgemm_beta: 13% of a fake1 shard's samples on an
         * AVX2 machine); it then adds the product to the zeros, as here, so
         * the results are the same bits (docs/performance.md "AVX2 machines"). */
        float beta = j->beta;
        if (beta == 0.0f) {
            const int rows = j->cols ? j->M : w, len = j->cols ? w : j->N;
            float *c = j->cols ? j->C + s : j->C + (size_t)s * j->ldc;
            for (int r = 0; r < rows; r++) memset(c + (size_t)r * j->ldc, 0, (size_t)len * sizeof(float));
            beta = 1.0f;
        }
        if (j->cols) { /* columns [s, s+w) of C and of op(B) */
            const float *B = j->tb == CblasNoTrans ? j->B + s : j->B + (size_t)s * j->ldb;
            cblas_sgemm(CblasRowMajor, j->ta, j->tb, j->M, w, j->K, j->alpha, j->A, j->lda, B, j->ldb, beta,
                        j->C + s, j->ldc);
        } else { /* rows [s, s+w) of C and of op(A) */
            const float *A = j->ta == CblasNoTrans ? j->A + (size_t)s * j->lda : j->A + s;
            cblas_sgemm(CblasRowMajor, j->ta, j->tb, w, j->N, j->K, j->alpha, A, j->lda, j->B, j->ldb, beta,
                        j->C + (size_t)s * j->ldc, j->ldc);
        }
    }
}

void ip_sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    if (M <= 0 || N <= 0) return;
    ip_par_blas_single();
    gemm_job j = {ta, tb, M, N, K, lda, ldb, ldc, ip_sgemm_blocks(M, N, K), split_columns(M, N), alpha, beta,
                  A, B, C};
    /* the block count already says whether the product is worth several threads */
    ip_par_for((size_t)j.nb, j.nb > 1 ? (size_t)-1 : 0, gemm_blocks, &j);
}
