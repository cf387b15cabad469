/* kernels.c - the level-3 BLAS building blocks of the iterations, written
 * once for the "wide view" (X is m x n, m <= n). A tall matrix is used in
 * place as the transpose of a wide one: its Gram matrix is X^T X (SYRK with
 * Trans) and S X becomes X S (a GEMM from the right), so no transposed copy
 * is ever made. Symmetric matrices are produced with SYRK (half the flops
 * of a GEMM); the mirror that turns a SYRK triangle into a full matrix is a
 * tiled in-register transpose. Which library runs each product, the panel
 * counts and the thread split come from the backend's table
 * (src/backend/table.c; the measurements behind it: docs/bench.md). */
#include <math.h>
#include <string.h>

#include <omp.h>

#include "ortho/ortho.h"

muon__view muon__view_of(long rows, long cols)
{
    muon__view v;
    v.tall = rows > cols;
    v.m = v.tall ? cols : rows;
    v.n = v.tall ? rows : cols;
    v.split = 0;
    v.panels = 0;
    v.be = muon__backend_default();
    v.threads = 1;
    return v;
}

#if defined(__AVX__)
#include <immintrin.h>
/* The 8 x 8 block of the upper triangle at row i, column j (j >= i + 8):
 * a += alpha b there first when b is given (while the rows are in
 * registers), then its transpose is written to the lower triangle. The
 * update is a multiply then an add, as the scalar loop rounds it. */
static inline void block8(float *a, const float *b, float alpha, long m, long i, long j)
{
    float *s = a + i * m + j, *d = a + j * m + i;
    __m256 r[8];
    for (int k = 0; k < 8; k++)
        r[k] = _mm256_loadu_ps(s + k * m);
    if (b) {
        const __m256 al = _mm256_set1_ps(alpha);
        const float *bs = b + i * m + j;
        for (int k = 0; k < 8; k++) {
            r[k] = _mm256_add_ps(r[k], _mm256_mul_ps(al, _mm256_loadu_ps(bs + k * m)));
            _mm256_storeu_ps(s + k * m, r[k]);
        }
    }
    __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(d + 0 * m, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(d + 1 * m, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(d + 2 * m, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(d + 3 * m, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(d + 4 * m, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(d + 5 * m, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(d + 6 * m, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(d + 7 * m, _mm256_permute2f128_ps(s3, s7, 0x31));
}
#else
static inline void block8(float *a, const float *b, float alpha, long m, long i, long j)
{
    for (long r = i; r < i + 8; r++)
        for (long c = j; c < j + 8; c++) {
            if (b)
                a[r * m + c] += alpha * b[r * m + c];
            a[c * m + r] = a[r * m + c];
        }
}
#endif

/* Upper triangle (diagonal included) of rows [r0, r1) x columns [c0, c1)
 * of a += alpha b, then the mirror of those entries below the diagonal,
 * element by element: the diagonal tiles and the ragged edge. */
static void edge(float *a, const float *b, float alpha, long m, long r0, long r1, long c0, long c1)
{
    for (long i = r0; i < r1; i++)
        for (long j = (c0 > i ? c0 : i); j < c1; j++) {
            if (b)
                a[i * m + j] += alpha * b[i * m + j];
            a[j * m + i] = a[i * m + j];
        }
}

/* Tile row ib (rows [ib, ib + 16)) of the mirror: its diagonal tile, then
 * the tiles to its right as four 8 x 8 register blocks each. Every cache
 * line of a tile is read whole and every destination line written whole,
 * once, so strides that are multiples of 4 KiB (m = 1024) do not thrash
 * L1's sets the way a column walk does. */
enum { TILE = 16 };
static void tile_row(float *a, const float *b, float alpha, long m, long mt, long ib)
{
    edge(a, b, alpha, m, ib, ib + TILE, ib, ib + TILE);
    for (long jb = ib + TILE; jb < mt; jb += TILE) {
        block8(a, b, alpha, m, ib, jb);
        block8(a, b, alpha, m, ib, jb + 8);
        block8(a, b, alpha, m, ib + 8, jb);
        block8(a, b, alpha, m, ib + 8, jb + 8);
    }
}

void muon__mirror_upper_add(float *a, const float *b, float alpha, long m)
{
    /* One thread: these passes are memory-bound, and a second OpenMP
     * thread's idle spinning afterwards slows the OpenBLAS products that
     * follow for callers that leave GOMP_SPINCOUNT at its default. */
    const long mt = m - m % TILE;
    for (long ib = 0; ib < mt; ib += TILE)
        tile_row(a, b, alpha, m, mt, ib);
    /* the columns past the last whole tile */
    edge(a, b, alpha, m, 0, m, mt, m);
}

void muon__mirror_upper(float *a, long m)
{
    muon__mirror_upper_add(a, NULL, 0.0f, m);
}

/* Row-major C (M x N) = alpha op(A) op(B) + beta C on the backend's GEMM:
 * the split's threads, or the call's as for the SYRKs around it. */
static void gemm(const muon__view *v, int ta, int tb, long M, long N, long K, float alpha,
                 const float *a, long lda, const float *b, long ldb, float beta, float *c,
                 long ldc)
{
    muon__be_gemm(v->be, MUON_PRODUCT_GEMM, v->split > 1 ? v->split : v->threads, ta, tb, M, N,
                  K, alpha, a, lda, b, ldb, beta, c, ldc);
}

/* SYRK by panels (v->panels > 1, set by ortho.c): row panels of the upper
 * triangle, each one single-threaded SYRK for its diagonal block and one
 * GEMM, on oneDNN, for the rest of its rows. Boundaries share the
 * triangle's area evenly, on multiples of 16 rows. Two uses:
 * - the split mode (v->split = T > 1, for a call on T BLAS threads): the
 *   panels are spread over T OpenMP threads and the general products run
 *   on oneDNN with T OpenMP threads, so OpenBLAS's own threads never run
 *   and the two thread pools never take turns on the cores;
 * - the backend's syrk_panels (OpenBLAS on AVX2 kernels): the GEMMs of
 *   the panels, most of the triangle, run at oneDNN's rate.
 * The panels are a function of m and v->panels only, and each is computed
 * on one thread, so the bits do not depend on how many threads share
 * them. */
static void syrk_panels(const muon__view *v, int trans, long m, long k, float alpha,
                        const float *x, long ldx, float *a)
{
    enum { MAX_PANELS = 64 };
    int np = v->panels > MAX_PANELS ? MAX_PANELS : v->panels;
    long lo[MAX_PANELS + 1];
    int n = 0;
    lo[0] = 0;
    for (int i = 1; i < np; i++) {
        long b = (long)((double)m * (1.0 - sqrt(1.0 - (double)i / np)) + 8) / 16 * 16;
        if (b > lo[n] && b < m)
            lo[++n] = b;
    }
    lo[++n] = m;
    const int nth = v->split > 1 && !omp_in_parallel() ? v->split : 1;
    int old = nth > 1 ? muon__blas_threads_push(1) : 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(nth) if (nth > 1)
    for (int i = 0; i < n; i++) {
        long r0 = lo[i], rows = lo[i + 1] - lo[i];
        /* rows r0.. of op(X): X's rows (X m x k), or its columns (X k x m) */
        const float *xi = trans ? x + r0 : x + r0 * ldx;
        const float *xr = trans ? x + r0 + rows : x + (r0 + rows) * ldx;
        muon__be_syrk(trans, rows, k, alpha, xi, ldx, a + r0 * m + r0, m);
        if (r0 + rows < m)
            gemm(v, trans, !trans, rows, m - r0 - rows, k, alpha, xi, ldx, xr, ldx, 0.0f,
                 a + r0 * m + r0 + rows, m);
    }
    if (nth > 1)
        muon__blas_threads_pop(old);
}

/* Upper triangle of A (m x m) = alpha op(X) op(X)^T, op(X) m x k: X itself
 * (m x k) or, when trans, the transpose of X (k x m). */
static void syrk_upper(const muon__view *v, int trans, long m, long k, float alpha,
                       const float *x, long ldx, float *a)
{
    if (v->panels > 1) {
        syrk_panels(v, trans, m, k, alpha, x, ldx, a);
        return;
    }
    muon__be_syrk(trans, m, k, alpha, x, ldx, a, m);
}

void muon__gram(const muon__view *v, const float *x, float *a, float alpha)
{
    long m = v->m, n = v->n;
    if (v->tall) /* x is n x m: A = X^T X */
        syrk_upper(v, 1, m, n, alpha, x, m, a);
    else
        syrk_upper(v, 0, m, n, alpha, x, n, a);
    muon__mirror_upper(a, m);
}

void muon__sgemm(const muon__view *v, int tb, long M, long N, long K, const float *a, long lda,
                 const float *b, long ldb, float beta, float *c, long ldc)
{
    gemm(v, 0, tb, M, N, K, 1.0f, a, lda, b, ldb, beta, c, ldc);
}

void muon__apply_full(const muon__view *v, const float *s, const float *x, float *y)
{
    long m = v->m, n = v->n;
    if (v->tall) /* y (n x m) = x S */
        muon__sgemm(v, 0, n, m, m, x, m, s, m, 0.0f, y, m);
    else /* y (m x n) = S x */
        muon__sgemm(v, 0, m, n, m, s, m, x, n, 0.0f, y, n);
}

static void scaled_plus_identity(float *dst, const float *src, double scale, double diag, long m)
{
    size_t mm = (size_t)m * (size_t)m;
    float sc = (float)scale;
    if (src)
        for (size_t i = 0; i < mm; i++)
            dst[i] = sc * src[i];
    else
        memset(dst, 0, mm * sizeof(float));
    for (long i = 0; i < m; i++)
        dst[i * m + i] += (float)diag;
}

void muon__poly_eval(const muon__view *v, const muon__poly *p, double c0, const float *a, float *s,
                     float *t)
{
    long m = v->m;
    int d = p->deg;
    if (d == 1) {
        scaled_plus_identity(s, a, p->q[1], c0, m);
        return;
    }
    /* The top three coefficients: s = q[d] A A^T by SYRK (A symmetric, so
     * A A^T = A^2), then q[d-1] A added in the pass that mirrors it and
     * q[d-2] on the diagonal: no separate pass to put q[d-1] A + q[d-2] I
     * in s first. */
    syrk_upper(v, 0, m, m, (float)p->q[d], a, m, s);
    muon__mirror_upper_add(s, a, (float)p->q[d - 1], m);
    const float diag = (float)(d == 2 ? c0 : p->q[d - 2]);
    for (long i = 0; i < m; i++)
        s[i * m + i] += diag;
    if (d == 2)
        return;
    /* The rest by Horner: s <- q[j] I + A s, for j = d-3 .. 0, as general
     * products (both operands are full; OpenBLAS's SYMM ran 1.5x slower
     * than its SGEMM on m x m operands at m = 1024). */
    float *cur = s, *nxt = t;
    for (int j = d - 3; j >= 0; j--) {
        scaled_plus_identity(nxt, NULL, 0.0, j == 0 ? c0 : p->q[j], m);
        muon__sgemm(v, 0, m, m, m, a, m, cur, m, 1.0f, nxt, m);
        float *tmp = cur;
        cur = nxt;
        nxt = tmp;
    }
    if (cur != s)
        memcpy(s, cur, (size_t)m * (size_t)m * sizeof(float));
}

double muon__poly_eval_flops(const muon__poly *p, long m)
{
    double dm = (double)m;
    if (p->deg < 2)
        return 0.0;
    return dm * (dm + 1) * dm + (double)(p->deg - 2) * 2.0 * dm * dm * dm;
}
