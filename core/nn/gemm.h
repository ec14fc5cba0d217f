/* Internal: SGEMM whose every output bit is independent of the thread count.
 *
 * Why: OpenBLAS's threaded SGEMM cuts the reduction dimension K into blocks
 * differently from its single-threaded one (level3_thread.c halves a
 * remainder between Q and 2Q exactly, level3.c rounds the half up to the
 * kernel's unroll), so C = A*B summed in different blocks rounds differently:
 * e.g. 64x576x9800 (a weight gradient over 200 images of 7x7) differs in 23,300
 * of 36,864 outputs between 1 and 2 threads. A study run alone (all cores as
 * BLAS threads) and one under mpirun (1 thread per rank) then disagree.
 *
 * So OpenBLAS always runs single-threaded (par.c sets it at start-up and
 * ip_par_set_threads keeps it there), and ip_sgemm parallelises itself: it
 * cuts C into column or row blocks whose number and bounds depend on the
 * shape only, never on the thread count, and runs one single-threaded SGEMM
 * per block on the ip_par_for pool. Each output is computed by the same call
 * with the same arguments whatever the thread count, hence bit-identical.
 * A call from inside an ip_par_for body runs the same blocks serially. */
#ifndef IP_GEMM_H
#define IP_GEMM_H

#include <cblas.h>

/* Row-major C(M,N) = alpha * op(A)(M,K) * op(B)(K,N) + beta * C, as cblas_sgemm. */
void ip_sgemm(enum CBLAS_TRANSPOSE ta, enum CBLAS_TRANSPOSE tb, int M, int N, int K, float alpha, const float *A,
              int lda, const float *B, int ldb, float beta, float *C, int ldc);

/* Blocks ip_sgemm cuts an M x N x K product into (1 = one call); exposed for tests. */
int ip_sgemm_blocks(int M, int N, int K);

#endif
