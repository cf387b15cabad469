/* kernels.c - the level-3 BLAS building blocks of the iterations, written
 * once for the "wide view" (X is m x n, m <= n). A tall matrix is used in
 * place as the transpose of a wide one: its Gram matrix is X^T X (SYRK with
 * Trans) and S X becomes X S (SYMM from the right), so no transposed copy is
 * ever made. Symmetric matrices are produced with SYRK (half the flops of a
 * GEMM); S X uses SYMM, which reads one triangle (OpenBLAS 0.3.21 runs it
 * at GEMM speed at m = 768/1024). The mirror that turns a SYRK triangle
 * into a full matrix is a tiled in-register transpose. */
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

#if defined(__AVX__)
#include <immintrin.h>
/* dst rows (8 of them, stride ld) = transpose of the 8 x 8 block at src */
static inline void transpose8(const float *src, float *dst, long ld)
{
    __m256 r0 = _mm256_loadu_ps(src + 0 * ld), r1 = _mm256_loadu_ps(src + 1 * ld);
    __m256 r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
    __m256 r4 = _mm256_loadu_ps(src + 4 * ld), r5 = _mm256_loadu_ps(src + 5 * ld);
    __m256 r6 = _mm256_loadu_ps(src + 6 * ld), r7 = _mm256_loadu_ps(src + 7 * ld);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * ld, _mm256_permute2f128_ps(s0, s4, 0x20));
    _mm256_storeu_ps(dst + 1 * ld, _mm256_permute2f128_ps(s1, s5, 0x20));
    _mm256_storeu_ps(dst + 2 * ld, _mm256_permute2f128_ps(s2, s6, 0x20));
    _mm256_storeu_ps(dst + 3 * ld, _mm256_permute2f128_ps(s3, s7, 0x20));
    _mm256_storeu_ps(dst + 4 * ld, _mm256_permute2f128_ps(s0, s4, 0x31));
    _mm256_storeu_ps(dst + 5 * ld, _mm256_permute2f128_ps(s1, s5, 0x31));
    _mm256_storeu_ps(dst + 6 * ld, _mm256_permute2f128_ps(s2, s6, 0x31));
    _mm256_storeu_ps(dst + 7 * ld, _mm256_permute2f128_ps(s3, s7, 0x31));
}
#else
static inline void transpose8(const float *src, float *dst, long ld)
{
    float t[8][8];
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++)
            t[j][i] = src[i * ld + j];
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 8; i++)
            dst[j * ld + i] = t[j][i];
}
#endif

/* Upper triangle (diagonal included) of rows [r0, r1) x columns [c0, c1)
 * of a += alpha b; nothing when b is NULL. */
static inline void add_upper(float *a, const float *b, float alpha, long m, long r0, long r1,
                             long c0, long c1)
{
    if (!b)
        return;
    for (long i = r0; i < r1; i++)
        for (long j = (c0 > i ? c0 : i); j < c1; j++)
            a[i * m + j] += alpha * b[i * m + j];
}

void muon__mirror_upper_add(float *a, const float *b, float alpha, long m)
{
    /* 16 x 16 tiles, each as four 8 x 8 blocks transposed in registers
     * (AVX; through a local tile otherwise): every cache line of the tile
     * is read whole and every destination line written whole, once, so
     * strides that are multiples of 4 KiB (m = 1024) do not thrash L1's
     * sets the way a column walk does (4.5 ns per element before). The
     * update by alpha b is applied to each tile just before it is copied,
     * while it is in cache. */
    enum { T = 16, H = 8 };
    const long mt = m - m % T;
    for (long ib = 0; ib < mt; ib += T) {
        add_upper(a, b, alpha, m, ib, ib + T, ib, ib + T);
        for (long i = ib; i < ib + T; i++)
            for (long j = i + 1; j < ib + T; j++)
                a[j * m + i] = a[i * m + j];
        for (long jb = ib + T; jb < mt; jb += T) {
            add_upper(a, b, alpha, m, ib, ib + T, jb, jb + T);
            const float *s = a + ib * m + jb;
            float *d = a + jb * m + ib;
            transpose8(s, d, m);
            transpose8(s + H * m, d + H, m);
            transpose8(s + H, d + H * m, m);
            transpose8(s + H * m + H, d + H * m + H, m);
        }
    }
    /* the columns past the last whole tile: row j of the lower triangle
     * is written contiguously */
    add_upper(a, b, alpha, m, 0, m, mt, m);
    for (long j = mt; j < m; j++)
        for (long i = 0; i < j; i++)
            a[j * m + i] = a[i * m + j];
}

void muon__mirror_upper(float *a, long m)
{
    muon__mirror_upper_add(a, NULL, 0.0f, m);
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
