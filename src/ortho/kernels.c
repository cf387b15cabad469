/* kernels.c - the level-3 BLAS building blocks of the iterations, written
 * once for the "wide view" (X is m x n, m <= n). A tall matrix is used in
 * place as the transpose of a wide one: its Gram matrix is X^T X (SYRK with
 * Trans) and S X becomes X S (SYMM from the right), so no transposed copy is
 * ever made. Symmetric matrices are produced with SYRK (half the flops of a
 * GEMM); S X uses SYMM, which reads one triangle; m x m products of full
 * matrices use GEMM, which OpenBLAS runs faster than SYMM at those sizes. */
#include <string.h>

#include <cblas.h>

#include "ortho/ortho.h"

muon__view muon__view_of(long rows, long cols)
{
    muon__view v;
    v.tall = rows > cols;
    v.m = v.tall ? cols : rows;
    v.n = v.tall ? rows : cols;
    return v;
}

void muon__mirror_upper(float *a, long m)
{
    /* 16 x 16 tiles through a local buffer: each source and destination
     * row segment is one whole cache line touched once, so strides that are
     * multiples of 4 KiB (m = 1024) do not thrash L1's sets the way a
     * column walk does (that made the mirror 4.5 ns per element). */
    enum { T = 16 };
    const long mt = m - m % T;
    for (long ib = 0; ib < mt; ib += T) {
        for (long i = ib; i < ib + T; i++)
            for (long j = i + 1; j < ib + T; j++)
                a[j * m + i] = a[i * m + j];
        for (long jb = ib + T; jb < mt; jb += T) {
            float tile[T][T];
            for (long i = 0; i < T; i++)
                for (long j = 0; j < T; j++)
                    tile[j][i] = a[(ib + i) * m + jb + j];
            for (long j = 0; j < T; j++)
                for (long i = 0; i < T; i++)
                    a[(jb + j) * m + ib + i] = tile[j][i];
        }
    }
    /* the columns past the last whole tile */
    for (long i = 0; i < m; i++)
        for (long j = (i + 1 > mt ? i + 1 : mt); j < m; j++)
            a[j * m + i] = a[i * m + j];
}

void muon__gram(const muon__view *v, const float *x, float *a, float alpha)
{
    long m = v->m, n = v->n;
    if (v->tall) /* x is n x m: A = X^T X */
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)m, (int)n, alpha, x, (int)m,
                    0.0f, a, (int)m);
    else
        cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)m, (int)n, alpha, x, (int)n,
                    0.0f, a, (int)m);
    muon__mirror_upper(a, m);
}

void muon__apply_sym(const muon__view *v, const float *s, const float *x, float *y)
{
    long m = v->m, n = v->n;
    if (v->tall) /* y (n x m) = x S */
        cblas_ssymm(CblasRowMajor, CblasRight, CblasUpper, (int)n, (int)m, 1.0f, s, (int)m, x,
                    (int)m, 0.0f, y, (int)m);
    else /* y (m x n) = S x */
        cblas_ssymm(CblasRowMajor, CblasLeft, CblasUpper, (int)m, (int)n, 1.0f, s, (int)m, x,
                    (int)n, 0.0f, y, (int)n);
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

void muon__poly_eval(const muon__poly *p, double c0, const float *a, float *s, float *t, long m,
                     int full)
{
    int d = p->deg;
    if (d == 1) {
        scaled_plus_identity(s, a, p->q[1], c0, m);
        return;
    }
    /* The top three coefficients in one SYRK: s = q[d-2] I + q[d-1] A +
     * q[d] A A^T (A symmetric, so A A^T = A^2), the polynomial folded into
     * SYRK's alpha and beta. */
    scaled_plus_identity(s, a, p->q[d - 1], d == 2 ? c0 : p->q[d - 2], m);
    cblas_ssyrk(CblasRowMajor, CblasUpper, CblasNoTrans, (int)m, (int)m, (float)p->q[d], a,
                (int)m, 1.0f, s, (int)m);
    if (d == 2 && !full)
        return;
    muon__mirror_upper(s, m);
    /* The rest by Horner: s <- q[j] I + A s, for j = d-3 .. 0. Both
     * operands are full here, and on m x m operands OpenBLAS's SGEMM runs
     * faster than its SYMM (measured 1.5x at m = 1024). */
    float *cur = s, *nxt = t;
    for (int j = d - 3; j >= 0; j--) {
        scaled_plus_identity(nxt, NULL, 0.0, j == 0 ? c0 : p->q[j], m);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)m, (int)m, (int)m, 1.0f, a,
                    (int)m, cur, (int)m, 1.0f, nxt, (int)m);
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
