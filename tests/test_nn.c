/* The GPT model's layers and the whole model against double-precision
 * references written here with plain loops: forwards compared directly,
 * backwards against central finite differences of the double reference
 * (accurate to ~1e-9, so the float kernels' own error is what is measured). */
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "nn/gpt.h"
#include "nn/layers.h"
#include "nn/vexp.h"
#include "ref_ortho.h"
#include "testutil.h"

#define FD_EPS 1e-6

/* ------------------------------------------------------------- helpers */

static float *frand(tu_rng *r, size_t n, double scale)
{
    float *x = malloc(n * sizeof *x);
    tu_fill_normal(r, x, n, scale);
    return x;
}

static double *to_double(const float *x, size_t n)
{
    double *d = malloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

static double dotd(const double *a, const double *b, size_t n)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* Largest |got - want| relative to max(1, |want|): float kernels vs double. */
static double max_rel_err(const float *got, const double *want, size_t n)
{
    double e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]) / fmax(1.0, fabs(want[i]));
        e = d > e || isnan(d) ? d : e;
    }
    return e;
}

/* A scalar function of a double vector, for finite differences. */
typedef double (*scalar_fn)(const double *x, void *ctx);

/* Central differences of f at x for every coordinate (x is restored). */
static void fd_grad(scalar_fn f, double *x, size_t n, void *ctx, double *g)
{
    for (size_t i = 0; i < n; i++) {
        double save = x[i], h = FD_EPS * fmax(1.0, fabs(save));
        x[i] = save + h;
        double fp = f(x, ctx);
        x[i] = save - h;
        double fm = f(x, ctx);
        x[i] = save;
        g[i] = (fp - fm) / (2 * h);
    }
}

/* ------------------------------------------------ double references */

static void ref_rmsnorm(const double *x, const double *g, double *y, int N, int D)
{
    for (int n = 0; n < N; n++) {
        double ss = 0;
        for (int i = 0; i < D; i++)
            ss += x[n * D + i] * x[n * D + i];
        double r = 1.0 / sqrt(ss / D + 1e-6);
        for (int i = 0; i < D; i++)
            y[n * D + i] = x[n * D + i] * r * g[i];
    }
}

/* y (N, out) = x (N, in) W^T */
static void ref_linear(const double *x, const double *W, double *y, int N, int in, int out)
{
    for (int n = 0; n < N; n++)
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int i = 0; i < in; i++)
                s += x[n * in + i] * W[o * in + i];
            y[n * out + o] = s;
        }
}

/* In place on rows n = b*T + t (position t) with the given stride. */
static void ref_rope(double *x, int N, int T, int stride, int H, int hd)
{
    int half = hd / 2;
    for (int n = 0; n < N; n++)
        for (int h = 0; h < H; h++)
            for (int i = 0; i < half; i++) {
                double ang = (n % T) * pow(10000.0, -2.0 * i / hd);
                double *a = x + n * stride + h * hd;
                double x1 = a[i], x2 = a[i + half];
                a[i] = x1 * cos(ang) - x2 * sin(ang);
                a[i + half] = x1 * sin(ang) + x2 * cos(ang);
            }
}

/* out (B*T, D) from qkv (B*T, 3D), causal softmax attention per head. */
static void ref_attention(const double *qkv, double *out, int B, int T, int D, int H)
{
    int hd = D / H;
    double *p = malloc((size_t)T * sizeof *p);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < H; h++)
            for (int t = 0; t < T; t++) {
                const double *q = qkv + (b * T + t) * 3 * D + h * hd;
                double mx = -INFINITY, sum = 0;
                for (int u = 0; u <= t; u++) {
                    const double *k = qkv + (b * T + u) * 3 * D + D + h * hd;
                    p[u] = dotd(q, k, (size_t)hd) / sqrt((double)hd);
                    mx = fmax(mx, p[u]);
                }
                for (int u = 0; u <= t; u++)
                    sum += p[u] = exp(p[u] - mx);
                for (int i = 0; i < hd; i++) {
                    double s = 0;
                    for (int u = 0; u <= t; u++)
                        s += p[u] / sum * qkv[(b * T + u) * 3 * D + 2 * D + h * hd + i];
                    out[(b * T + t) * D + h * hd + i] = s;
                }
            }
    free(p);
}

static double ref_xent(const double *logits, const int32_t *tgt, int N, int V)
{
    double total = 0;
    for (int n = 0; n < N; n++) {
        double mx = -INFINITY, s = 0;
        for (int j = 0; j < V; j++)
            mx = fmax(mx, logits[n * V + j]);
        for (int j = 0; j < V; j++)
            s += exp(logits[n * V + j] - mx);
        total += mx + log(s) - logits[n * V + tgt[n]];
    }
    return total / N;
}

/* ------------------------------------------------------------ layers */

TEST(nn_embedding)
{
    tu_rng r;
    tu_seed(&r, mt_seed);
    enum { V = 7, N = 10, D = 9 };
    int32_t tok[N] = {3, 0, 6, 3, 3, 1, 6, 2, 5, 3}; /* repeats accumulate */
    float *wte = frand(&r, V * D, 1), *dout = frand(&r, N * D, 1), *dwte = frand(&r, V * D, 1);
    float *dwte0 = malloc(sizeof(float) * V * D), out[N * D];
    memcpy(dwte0, dwte, sizeof(float) * V * D);
    nn_embedding_forward(out, tok, wte, N, D);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < D; i++)
            ASSERT(out[n * D + i] == wte[tok[n] * D + i]);
    nn_embedding_backward(dwte, dout, tok, N, D);
    for (int v = 0; v < V; v++)
        for (int i = 0; i < D; i++) {
            double want = dwte0[v * D + i];
            for (int n = 0; n < N; n++)
                want += tok[n] == v ? dout[n * D + i] : 0.0;
            ASSERT_NEAR(dwte[v * D + i], want, 1e-5);
        }
    free(wte);
    free(dout);
    free(dwte);
    free(dwte0);
}

typedef struct {
    int N, D;
    const double *R; /* loss = sum R * y */
    const double *other;
} rms_ctx;

static double rms_loss_x(const double *x, void *vc)
{
    rms_ctx *c = vc;
    double *y = malloc(sizeof(double) * c->N * c->D);
    ref_rmsnorm(x, c->other, y, c->N, c->D);
    double l = dotd(y, c->R, (size_t)c->N * c->D);
    free(y);
    return l;
}

static double rms_loss_g(const double *g, void *vc)
{
    rms_ctx *c = vc;
    double *y = malloc(sizeof(double) * c->N * c->D);
    ref_rmsnorm(c->other, g, y, c->N, c->D);
    double l = dotd(y, c->R, (size_t)c->N * c->D);
    free(y);
    return l;
}

TEST(nn_rmsnorm)
{
    tu_rng r;
    tu_seed(&r, mt_seed + 1);
    enum { N = 10, D = 20 }; /* D > 16: two column blocks in the dg sum */
    float *x = frand(&r, N * D, 2), *g = frand(&r, D, 1), *dy = frand(&r, N * D, 1);
    float *dx = frand(&r, N * D, 1), *dg = frand(&r, D, 1);
    float *dx0 = malloc(sizeof(float) * N * D), dg0[D], y[N * D], rstd[N];
    memcpy(dx0, dx, sizeof(float) * N * D);
    memcpy(dg0, dg, sizeof dg0);
    double *xd = to_double(x, N * D), *gd = to_double(g, D), *R = to_double(dy, N * D);
    double yd[N * D], fdx[N * D], fdg[D];
    float *cp = malloc(sizeof(float) * N * D), *dxw = malloc(sizeof(float) * N * D);
    nn_rmsnorm_forward(y, rstd, x, g, N, D, cp);
    ASSERT(memcmp(cp, x, sizeof(float) * N * D) == 0); /* the residual copy */
    ref_rmsnorm(xd, gd, yd, N, D);
    ASSERT_LE(max_rel_err(y, yd, N * D), 1e-5);
    nn_rmsnorm_forward(y, rstd, x, g, N, D, NULL); /* no copy */
    ASSERT_LE(max_rel_err(y, yd, N * D), 1e-5);
    nn_rmsnorm_backward(dx, dg, dy, x, g, rstd, N, D, 1);
    rms_ctx c = {N, D, R, gd};
    fd_grad(rms_loss_x, xd, N * D, &c, fdx);
    c.other = xd;
    fd_grad(rms_loss_g, gd, D, &c, fdg);
    for (int i = 0; i < N * D; i++) /* accumulated on top of dx0 */
        ASSERT_NEAR(dx[i] - dx0[i], fdx[i], 1e-4 * fmax(1, fabs(fdx[i])));
    for (int i = 0; i < D; i++)
        ASSERT_NEAR(dg[i] - dg0[i], fdg[i], 1e-4 * fmax(1, fabs(fdg[i])));
    for (int i = 0; i < N * D; i++)
        dxw[i] = 1e9f;
    nn_rmsnorm_backward(dxw, dg, dy, x, g, rstd, N, D, 0); /* written, not accumulated */
    for (int i = 0; i < N * D; i++)
        ASSERT_NEAR(dxw[i], fdx[i], 1e-4 * fmax(1, fabs(fdx[i])));
    free(cp);
    free(dxw);
    free(x);
    free(g);
    free(dy);
    free(dx);
    free(dg);
    free(dx0);
    free(xd);
    free(gd);
    free(R);
}

typedef struct {
    int N, in, out;
    const double *R, *other;
} lin_ctx;

static double lin_loss_x(const double *x, void *vc)
{
    lin_ctx *c = vc;
    double *y = malloc(sizeof(double) * c->N * c->out);
    ref_linear(x, c->other, y, c->N, c->in, c->out);
    double l = dotd(y, c->R, (size_t)c->N * c->out);
    free(y);
    return l;
}

static double lin_loss_w(const double *W, void *vc)
{
    lin_ctx *c = vc;
    double *y = malloc(sizeof(double) * c->N * c->out);
    ref_linear(c->other, W, y, c->N, c->in, c->out);
    double l = dotd(y, c->R, (size_t)c->N * c->out);
    free(y);
    return l;
}

TEST(nn_linear)
{
    tu_rng r;
    tu_seed(&r, mt_seed + 2);
    enum { N = 10, IN = 8, OUT = 12 };
    float *x = frand(&r, N * IN, 1), *W = frand(&r, OUT * IN, 1), *dy = frand(&r, N * OUT, 1);
    float *dW = frand(&r, OUT * IN, 1), dW0[OUT * IN], y[N * OUT], dx[N * IN];
    memcpy(dW0, dW, sizeof dW0);
    for (int i = 0; i < N * IN; i++)
        dx[i] = 1e9f; /* written, not accumulated */
    double *xd = to_double(x, N * IN), *Wd = to_double(W, OUT * IN), *R = to_double(dy, N * OUT);
    double yd[N * OUT], fdx[N * IN], fdw[OUT * IN];
    for (int i = 0; i < N * OUT; i++)
        y[i] = 1e9f; /* written, not accumulated */
    nn_linear_forward(y, x, W, N, IN, OUT, 0);
    ref_linear(xd, Wd, yd, N, IN, OUT);
    ASSERT_LE(max_rel_err(y, yd, N * OUT), 1e-5);
    for (int i = 0; i < N * OUT; i++) /* with add: y = 1 + x W^T */
        y[i] = 1.0f;
    nn_linear_forward(y, x, W, N, IN, OUT, 1);
    for (int i = 0; i < N * OUT; i++)
        ASSERT_NEAR(y[i], 1.0 + yd[i], 1e-5 * fmax(1, fabs(yd[i])));
    nn_linear_backward(dx, dW, dy, x, W, N, IN, OUT);
    lin_ctx c = {N, IN, OUT, R, Wd};
    fd_grad(lin_loss_x, xd, N * IN, &c, fdx);
    c.other = xd;
    fd_grad(lin_loss_w, Wd, OUT * IN, &c, fdw);
    ASSERT_LE(max_rel_err(dx, fdx, N * IN), 1e-4);
    for (int i = 0; i < OUT * IN; i++)
        ASSERT_NEAR(dW[i] - dW0[i], fdw[i], 1e-4 * fmax(1, fabs(fdw[i])));
    nn_linear_backward(NULL, dW, dy, x, W, N, IN, OUT); /* dx may be skipped */
    free(x);
    free(W);
    free(dy);
    free(dW);
    free(xd);
    free(Wd);
    free(R);
}

typedef struct {
    int N, T, stride, H, hd;
    const double *R;
} rope_ctx;

static double rope_loss(const double *x, void *vc)
{
    rope_ctx *c = vc;
    size_t n = (size_t)c->N * c->stride;
    double *y = malloc(n * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    ref_rope(y, c->N, c->T, c->stride, c->H, c->hd);
    double l = dotd(y, c->R, n);
    free(y);
    return l;
}

TEST(nn_rope)
{
    tu_rng r;
    tu_seed(&r, mt_seed + 3);
    /* rows of stride 20 holding 2 heads of 8 and 4 untouched columns, at
     * positions 0..T-1 for B = 2 sequences */
    enum { B = 2, T = 5, N = B * T, H = 2, HD = 8, S = 20 };
    float *x = frand(&r, N * S, 1), *dy = frand(&r, N * S, 1), cs[T * HD / 2], sn[T * HD / 2];
    float *y = malloc(sizeof(float) * N * S);
    memcpy(y, x, sizeof(float) * N * S);
    double *xd = to_double(x, N * S), *R = to_double(dy, N * S), yd[N * S], fd[N * S];
    memcpy(yd, xd, sizeof yd);
    nn_rope_tables(cs, sn, T, HD);
    nn_rope_forward(y, N, T, S, H, HD, cs, sn);
    ref_rope(yd, N, T, S, H, HD);
    ASSERT_LE(max_rel_err(y, yd, N * S), 1e-6);
    for (int n = 0; n < N; n++) /* position 0 is the identity; the tail untouched */
        for (int i = 0; i < S; i++)
            if (n % T == 0 || i >= H * HD)
                ASSERT(y[n * S + i] == x[n * S + i]);
    nn_rope_backward(dy, N, T, S, H, HD, cs, sn);
    rope_ctx c = {N, T, S, H, HD, R};
    fd_grad(rope_loss, xd, N * S, &c, fd);
    ASSERT_LE(max_rel_err(dy, fd, N * S), 1e-5);
    free(x);
    free(dy);
    free(y);
    free(xd);
    free(R);
}

typedef struct {
    int B, T, D, H;
    const double *R;
} att_ctx;

static double att_loss(const double *qkv, void *vc)
{
    att_ctx *c = vc;
    size_t n = (size_t)c->B * c->T * c->D;
    double *y = malloc(n * sizeof *y);
    ref_attention(qkv, y, c->B, c->T, c->D, c->H);
    double l = dotd(y, c->R, n);
    free(y);
    return l;
}

static void check_attention(int B, int T, int D, int H, uint64_t seed)
{
    tu_rng r;
    tu_seed(&r, seed);
    int N = B * T;
    size_t nq = (size_t)N * 3 * D, no = (size_t)N * D, na = (size_t)B * H * T * T;
    float *qkv = frand(&r, nq, 1.5), *dy = frand(&r, no, 1), *out = malloc(no * sizeof(float));
    float *out2 = malloc(no * sizeof(float)), *att = malloc(na * sizeof(float));
    float *scratch = malloc(na * sizeof(float)), *dqkv = malloc(nq * sizeof(float));
    double *qd = to_double(qkv, nq), *R = to_double(dy, no), *od = malloc(no * sizeof(double));
    double *fd = malloc(nq * sizeof(double));
    nn_attention_forward(out, att, qkv, B, T, D, H);
    ref_attention(qd, od, B, T, D, H);
    ASSERT_LE(max_rel_err(out, od, no), 1e-5);
    for (int bh = 0; bh < B * H; bh++) /* probabilities: rows sum to 1, future is 0 */
        for (int t = 0; t < T; t++) {
            double s = 0;
            for (int u = 0; u < T; u++) {
                s += att[((size_t)bh * T + t) * T + u];
                if (u > t)
                    ASSERT(att[((size_t)bh * T + t) * T + u] == 0.0f);
            }
            ASSERT_NEAR(s, 1.0, 1e-5);
        }
    for (size_t i = 0; i < nq; i++)
        dqkv[i] = 1e9f; /* written, not accumulated */
    nn_attention_backward(dqkv, scratch, dy, qkv, att, B, T, D, H);
    att_ctx c = {B, T, D, H, R};
    fd_grad(att_loss, qd, nq, &c, fd);
    ASSERT_LE(max_rel_err(dqkv, fd, nq), 1e-4);
    /* the mask, directly: changing the last position's q, k, v leaves every
     * earlier output of the C kernel unchanged */
    for (int b = 0; b < B; b++)
        for (int i = 0; i < 3 * D; i++)
            qkv[((size_t)b * T + T - 1) * 3 * D + i] += 3.0f;
    nn_attention_forward(out2, att, qkv, B, T, D, H);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < (T - 1) * D; i++)
            ASSERT(out2[(size_t)b * T * D + i] == out[(size_t)b * T * D + i]);
    free(qkv);
    free(dy);
    free(out);
    free(out2);
    free(att);
    free(scratch);
    free(dqkv);
    free(qd);
    free(R);
    free(od);
    free(fd);
}

TEST(nn_attention)
{
    check_attention(2, 5, 8, 2, mt_seed + 4);
}

/* T = 70 spans three query blocks of the kernel, the last one partial */
TEST(nn_attention_blocked)
{
    check_attention(1, 70, 4, 1, mt_seed + 14);
}

/* Head sizes of real models (hd = 32) and an odd multiple of 8 (hd = 40),
 * with T = 18 and 21 leaving partial query blocks. */
TEST(nn_attention_wide_heads)
{
    check_attention(1, 18, 32, 1, mt_seed + 15);
    check_attention(1, 21, 40, 1, mt_seed + 16);
}

TEST(nn_relu2_and_residual)
{
    tu_rng r;
    tu_seed(&r, mt_seed + 5);
    enum { n = 64 };
    float *x = frand(&r, n, 1), *dy = frand(&r, n, 1), y[n], dx[n];
    for (int i = 0; i < n; i++) /* keep finite differences away from the kink */
        x[i] += x[i] >= 0 ? 0.05f : -0.05f;
    nn_relu2_forward(y, x, n);
    nn_relu2_backward(dx, dy, x, n);
    for (int i = 0; i < n; i++) {
        double xi = x[i], h = 1e-6;
        double want = xi > 0 ? xi * xi : 0.0;
        double fd = ((xi + h > 0 ? (xi + h) * (xi + h) : 0) - (xi - h > 0 ? (xi - h) * (xi - h) : 0)) / (2 * h);
        ASSERT_NEAR(y[i], want, 1e-6 * fmax(1, want));
        ASSERT_NEAR(dx[i], fd * dy[i], 1e-5 * fmax(1, fabs(fd * dy[i])));
    }
    /* in place, as gpt.c uses it */
    memcpy(dx, dy, sizeof dx);
    nn_relu2_backward(dx, dx, x, n);
    for (int i = 0; i < n; i++)
        ASSERT(dx[i] == 2.0f * (x[i] > 0 ? x[i] : 0.0f) * dy[i]);
    float a[n], b[n], o[n], da[n], db[n];
    for (int i = 0; i < n; i++) {
        a[i] = (float)i;
        b[i] = 0.5f * (float)i;
        da[i] = 1.0f;
        db[i] = 2.0f;
    }
    nn_residual_forward(o, a, b, n);
    nn_residual_backward(da, db, dy, n);
    for (int i = 0; i < n; i++) {
        ASSERT(o[i] == 1.5f * (float)i);
        ASSERT(da[i] == 1.0f + dy[i] && db[i] == 2.0f + dy[i]);
    }
    free(x);
    free(dy);
}

typedef struct {
    int N, V;
    const int32_t *tgt;
} xent_ctx;

static double xent_loss(const double *z, void *vc)
{
    xent_ctx *c = vc;
    return ref_xent(z, c->tgt, c->N, c->V);
}

/* nn_expf against exp in double over its whole normal range (a dense grid
 * plus random points), and its limits: 0 below, inf above, NaN kept. */
TEST(nn_vexp)
{
    enum { n = 200001 };
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    tu_rng r;
    tu_seed(&r, mt_seed + 21);
    for (int i = 0; i < n; i++)
        x[i] = i % 2 ? (float)(-86.6 + 175.3 * i / (n - 1))
                     : (float)(-86.6 + 175.3 * tu_uniform(&r));
#pragma omp simd
    for (int i = 0; i < n; i++)
        y[i] = nn_expf(x[i]);
    double worst = 0;
    for (int i = 0; i < n; i++) {
        double e = exp((double)x[i]);
        worst = fmax(worst, fabs(y[i] - e) / e);
    }
    ASSERT_LE(worst, 3e-7);
    ASSERT(nn_expf(0.0f) == 1.0f);
    ASSERT(nn_expf(-100.0f) == 0.0f && nn_expf(-INFINITY) == 0.0f);
    ASSERT(isinf(nn_expf(89.0f)) && isinf(nn_expf(INFINITY)));
    ASSERT(isnan(nn_expf(NAN)));
    free(x);
    free(y);
}

TEST(nn_xent_fused)
{
    tu_rng r;
    tu_seed(&r, mt_seed + 6);
    enum { N = 6, V = 11 };
    int32_t tgt[N] = {0, 10, 3, 3, 7, 1};
    float *z = frand(&r, N * V, 3), losses[N];
    double *zd = to_double(z, N * V), fd[N * V];
    float loss = nn_crossentropy_fused(z, losses, tgt, N, V, 1.0f / N);
    ASSERT_NEAR(loss, ref_xent(zd, tgt, N, V), 1e-5);
    xent_ctx c = {N, V, tgt};
    fd_grad(xent_loss, zd, N * V, &c, fd);
    ASSERT_LE(max_rel_err(z, fd, N * V), 1e-6); /* z now holds dlogits */
    /* a huge margin must give a finite loss and gradient */
    float big[V] = {0};
    int32_t t0 = 0;
    big[5] = 200.0f;
    loss = nn_crossentropy_fused(big, losses, &t0, 1, V, 1.0f);
    ASSERT_NEAR(loss, 200.0, 1e-3);
    ASSERT_NEAR(big[0], -1.0, 1e-6);
    ASSERT_NEAR(big[5], 1.0, 1e-6);
    free(z);
    free(zd);
}

/* ---------------------------------------------- double reference model */

typedef struct {
    const gpt_model *m; /* for the table's offsets */
    const int32_t *tok, *tgt;
    int B, T;
    double *logits; /* optional (B*T, V) output */
} model_ctx;

static const double *view(const model_ctx *c, const double *p, const char *name)
{
    return p + gpt_tensor_at(c->m, gpt_find_tensor(c->m, name))->offset;
}

/* Mean cross-entropy of docs/model.md's forward, in double, plain loops. */
static double ref_model_loss(const double *p, void *vc)
{
    const model_ctx *c = vc;
    const gpt_config *g = gpt_get_config(c->m);
    int B = c->B, T = c->T, N = B * T, D = g->dim, H = g->heads, V = g->vocab;
    double *x = malloc(sizeof(double) * N * D), *h = malloc(sizeof(double) * N * D);
    double *qkv = malloc(sizeof(double) * N * 3 * D), *a = malloc(sizeof(double) * N * D);
    double *f = malloc(sizeof(double) * N * 4 * D), *o = malloc(sizeof(double) * N * D);
    double *lg = malloc(sizeof(double) * N * V);
    const double *wte = view(c, p, "wte");
    for (int n = 0; n < N; n++)
        for (int i = 0; i < D; i++)
            x[n * D + i] = wte[c->tok[n] * D + i];
    char name[64];
    for (int l = 0; l < g->layers; l++) {
        snprintf(name, sizeof name, "h.%d.ln1", l);
        ref_rmsnorm(x, view(c, p, name), h, N, D);
        snprintf(name, sizeof name, "h.%d.qkv", l);
        ref_linear(h, view(c, p, name), qkv, N, D, 3 * D);
        ref_rope(qkv, N, T, 3 * D, H, D / H);
        ref_rope(qkv + D, N, T, 3 * D, H, D / H);
        ref_attention(qkv, a, B, T, D, H);
        snprintf(name, sizeof name, "h.%d.attn_out", l);
        ref_linear(a, view(c, p, name), o, N, D, D);
        for (int i = 0; i < N * D; i++)
            x[i] += o[i];
        snprintf(name, sizeof name, "h.%d.ln2", l);
        ref_rmsnorm(x, view(c, p, name), h, N, D);
        snprintf(name, sizeof name, "h.%d.fc", l);
        ref_linear(h, view(c, p, name), f, N, D, 4 * D);
        for (int i = 0; i < N * 4 * D; i++)
            f[i] = f[i] > 0 ? f[i] * f[i] : 0;
        snprintf(name, sizeof name, "h.%d.proj", l);
        ref_linear(f, view(c, p, name), o, N, 4 * D, D);
        for (int i = 0; i < N * D; i++)
            x[i] += o[i];
    }
    ref_rmsnorm(x, view(c, p, "lnf"), h, N, D);
    ref_linear(h, view(c, p, "head"), lg, N, D, V);
    double loss = c->tgt ? ref_xent(lg, c->tgt, N, V) : 0;
    if (c->logits)
        memcpy(c->logits, lg, sizeof(double) * N * V);
    free(x);
    free(h);
    free(qkv);
    free(a);
    free(f);
    free(o);
    free(lg);
    return loss;
}

static void random_tokens(tu_rng *r, int32_t *t, int n, int V)
{
    for (int i = 0; i < n; i++)
        t[i] = (int32_t)(tu_uniform(r) * V);
}

/* Every parameter perturbed, so no gradient is trivially zero. */
static void perturb_params(gpt_model *m, tu_rng *r, double scale)
{
    float *p = gpt_params(m);
    for (size_t i = 0; i < gpt_num_params(m); i++)
        p[i] += (float)(scale * tu_normal(r));
}

static gpt_model *tiny_model(int V, int T, int L, int D, int H, int batch)
{
    gpt_config c = {V, T, L, D, H};
    gpt_model *m = NULL;
    if (gpt_create(&c, batch, &m) != MUON_OK)
        return NULL;
    gpt_init_params(m, 7);
    return m;
}

/* ------------------------------------------------------------- model */

TEST(nn_gpt_table_and_config)
{
    gpt_config c = {11, 6, 2, 8, 2};
    ASSERT_OK(gpt_config_validate(&c));
    gpt_config bad = c;
    bad.heads = 3;
    ASSERT_STATUS(gpt_config_validate(&bad), MUON_ERR_ARG); /* 8 % 3 */
    bad = c;
    bad.dim = 12;
    bad.heads = 4;
    ASSERT_STATUS(gpt_config_validate(&bad), MUON_ERR_ARG); /* head size 3 is odd */
    bad = c;
    bad.layers = 0;
    ASSERT_STATUS(gpt_config_validate(&bad), MUON_ERR_SIZE);
    bad = c;
    bad.vocab = -1;
    ASSERT_STATUS(gpt_config_validate(&bad), MUON_ERR_SIZE);
    ASSERT_STATUS(gpt_config_validate(NULL), MUON_ERR_NULL);
    gpt_model *m = (gpt_model *)1;
    bad = c;
    bad.dim = 1 << 29; /* 4D overflows an int */
    bad.heads = 2;
    ASSERT_STATUS(gpt_create(&bad, 1, &m), MUON_ERR_SIZE);
    ASSERT(m == NULL);
    bad = c;
    bad.layers = 1 << 30; /* L * 12 D^2 overflows size_t */
    bad.dim = 1 << 28;
    ASSERT_STATUS(gpt_create(&bad, 1, &m), MUON_ERR_SIZE);
    ASSERT_STATUS(gpt_create(&c, 0, &m), MUON_ERR_SIZE);
    bad = c;
    bad.context = 1 << 20;
    ASSERT_STATUS(gpt_create(&bad, 1 << 12, &m), MUON_ERR_SIZE); /* B*T > INT_MAX */

    ASSERT_OK(gpt_create(&c, 2, &m));
    const char *names[] = {"wte",          "h.0.ln1", "h.0.ln2",  "h.0.qkv",
                           "h.0.attn_out", "h.0.fc",  "h.0.proj", "h.1.ln1",
                           "h.1.ln2",      "h.1.qkv", "h.1.attn_out", "h.1.fc",
                           "h.1.proj",     "lnf",     "head"};
    muon_role roles[] = {MUON_ROLE_EMBEDDING, MUON_ROLE_VECTOR, MUON_ROLE_VECTOR,
                         MUON_ROLE_MATRIX,    MUON_ROLE_MATRIX, MUON_ROLE_MATRIX,
                         MUON_ROLE_MATRIX,    MUON_ROLE_VECTOR, MUON_ROLE_VECTOR,
                         MUON_ROLE_MATRIX,    MUON_ROLE_MATRIX, MUON_ROLE_MATRIX,
                         MUON_ROLE_MATRIX,    MUON_ROLE_VECTOR, MUON_ROLE_HEAD};
    long rows[] = {11, 8, 8, 24, 8, 32, 8, 8, 8, 24, 8, 32, 8, 8, 11};
    long cols[] = {8, 0, 0, 8, 8, 8, 32, 0, 0, 8, 8, 8, 32, 0, 8};
    ASSERT_EQ_INT(gpt_num_tensors(m), 15);
    size_t off = 0;
    for (int i = 0; i < 15; i++) {
        const gpt_tensor *t = gpt_tensor_at(m, i);
        ASSERT(strcmp(t->name, names[i]) == 0);
        ASSERT_EQ_INT(t->role, roles[i]);
        ASSERT_EQ_INT(t->ndim, cols[i] ? 2 : 1);
        ASSERT_EQ_INT(t->shape[0], rows[i]);
        ASSERT_EQ_INT(t->shape[1], cols[i]);
        ASSERT_EQ_INT(t->offset, off); /* contiguous, table order */
        ASSERT_EQ_INT(t->numel, rows[i] * (cols[i] ? cols[i] : 1));
        ASSERT_EQ_INT(gpt_find_tensor(m, names[i]), i);
        off += t->numel;
    }
    ASSERT(gpt_tensor_at(m, 15) == NULL && gpt_tensor_at(m, -1) == NULL);
    ASSERT_EQ_INT(gpt_find_tensor(m, "nope"), -1);
    ASSERT_EQ_INT(gpt_num_params(m), off);
    ASSERT_EQ_INT(off, 2 * 11 * 8 + 2 * (2 * 8 + 12 * 64) + 8);
    ASSERT_EQ_INT(gpt_config_num_params(&c), off);
    bad = c;
    bad.heads = 3;
    ASSERT_EQ_INT(gpt_config_num_params(&bad), 0);
    ASSERT_EQ_INT(gpt_config_num_params(NULL), 0);
    ASSERT(gpt_activation_bytes(m) > 0);
    gpt_free(m);
    gpt_free(NULL);
}

TEST(nn_gpt_init)
{
    gpt_model *m = tiny_model(64, 8, 2, 32, 4, 1), *m2 = tiny_model(64, 8, 2, 32, 4, 1);
    ASSERT(m && m2);
    ASSERT(memcmp(gpt_params(m), gpt_params(m2), gpt_num_params(m) * sizeof(float)) == 0);
    gpt_init_params(m2, 8);
    ASSERT(memcmp(gpt_params(m), gpt_params(m2), 64 * 32 * sizeof(float)) != 0);
    double bound = sqrt(3.0) * 0.5 / sqrt(32.0);
    for (int i = 0; i < gpt_num_tensors(m); i++) {
        const gpt_tensor *t = gpt_tensor_at(m, i);
        const float *w = gpt_params(m) + t->offset;
        double s = 0, ss = 0, mx = 0;
        for (size_t j = 0; j < t->numel; j++) {
            s += w[j];
            ss += (double)w[j] * w[j];
            mx = fmax(mx, fabs(w[j]));
        }
        double mean = s / t->numel, rms = sqrt(ss / t->numel);
        const char *nm = t->name;
        size_t len = strlen(nm);
        if (t->role == MUON_ROLE_EMBEDDING) {
            ASSERT_NEAR(mean, 0, 0.05);
            ASSERT_NEAR(rms, 1, 0.05);
        } else if (t->role == MUON_ROLE_VECTOR) {
            ASSERT(mean == 1 && mx == 1);
        } else if (strcmp(nm + len - 4, ".qkv") == 0 || strcmp(nm + len - 3, ".fc") == 0) {
            ASSERT_LE(mx, bound);
            ASSERT_NEAR(rms, bound / sqrt(3.0), 0.05 * bound);
        } else {
            ASSERT(mx == 0); /* attn_out, proj, head */
        }
    }
    /* the documented generator: first wte value from seed 7 */
    uint64_t s = 7;
    uint64_t z1, z2;
    for (int k = 0; k < 2; k++) {
        uint64_t z = (s += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        if (k == 0)
            z1 = z;
        else
            z2 = z;
    }
    double u1 = 1.0 - (double)(z1 >> 11) / 9007199254740992.0;
    double u2 = (double)(z2 >> 11) / 9007199254740992.0;
    ASSERT(gpt_params(m)[0] == (float)(sqrt(-2 * log(u1)) * cos(2 * M_PI * u2)));
    gpt_free(m);
    gpt_free(m2);
}

TEST(nn_gpt_initial_loss)
{
    tu_rng r;
    tu_seed(&r, mt_seed + 10);
    enum { V = 50, T = 16, B = 3 };
    gpt_model *m = tiny_model(V, T, 2, 16, 2, B);
    ASSERT(m);
    int32_t tok[B * T], tgt[B * T];
    random_tokens(&r, tok, B * T, V);
    random_tokens(&r, tgt, B * T, V);
    ASSERT_NEAR(gpt_forward(m, tok, tgt, B, T), log((double)V), 1e-5);
    /* a small random head: close to ln V, no longer exact */
    const gpt_tensor *h = gpt_tensor_at(m, gpt_find_tensor(m, "head"));
    tu_fill_normal(&r, gpt_params(m) + h->offset, h->numel, 0.02);
    float loss = gpt_forward(m, tok, tgt, B, T);
    ASSERT_NEAR(loss, log((double)V), 0.1);
    ASSERT(loss != (float)log((double)V));
    gpt_free(m);
}

TEST(nn_gpt_forward_matches_reference)
{
    tu_rng r;
    tu_seed(&r, mt_seed + 11);
    enum { V = 11, T = 6, B = 2 };
    gpt_model *m = tiny_model(V, T, 2, 8, 2, B);
    ASSERT(m);
    perturb_params(m, &r, 0.3);
    int32_t tok[B * T], tgt[B * T];
    random_tokens(&r, tok, B * T, V);
    random_tokens(&r, tgt, B * T, V);
    double *pd = to_double(gpt_params(m), gpt_num_params(m)), lg[B * T * V];
    model_ctx c = {m, tok, tgt, B, T, lg};
    double want = ref_model_loss(pd, &c);
    ASSERT_NEAR(gpt_forward(m, tok, tgt, B, T), want, 1e-5 * fmax(1, want));
    ASSERT(gpt_forward(m, tok, NULL, B, T) == 0.0f);
    ASSERT_LE(max_rel_err(gpt_logits(m), lg, B * T * V), 1e-5);
    /* a smaller batch and shorter sequences than the model was sized for */
    c.B = 1;
    c.T = 4;
    double *lg2 = c.logits = malloc(sizeof(double) * 4 * V);
    want = ref_model_loss(pd, &c);
    ASSERT_NEAR(gpt_forward(m, tok, tgt, 1, 4), want, 1e-5 * fmax(1, want));
    ASSERT(gpt_forward(m, tok, NULL, 1, 4) == 0.0f);
    ASSERT_LE(max_rel_err(gpt_logits(m), lg2, 4 * V), 1e-5);
    free(lg2);
    free(pd);
    gpt_free(m);
}

TEST(nn_gpt_gradient_fd)
{
    tu_rng r;
    tu_seed(&r, mt_seed + 12);
    enum { V = 11, T = 6, B = 2 };
    gpt_model *m = tiny_model(V, T, 2, 8, 2, B);
    ASSERT(m);
    perturb_params(m, &r, 0.3);
    int32_t tok[B * T], tgt[B * T];
    random_tokens(&r, tok, B * T, V);
    random_tokens(&r, tgt, B * T, V);
    tok[3] = tok[7] = tok[9]; /* repeated tokens: embedding rows accumulate */
    size_t n = gpt_num_params(m);
    gpt_zero_grad(m);
    ASSERT(isfinite(gpt_forward(m, tok, tgt, B, T)));
    ASSERT_OK(gpt_backward(m));
    double *pd = to_double(gpt_params(m), n), *fd = malloc(n * sizeof *fd);
    model_ctx c = {m, tok, tgt, B, T, NULL};
    fd_grad(ref_model_loss, pd, n, &c, fd);
    const float *g = gpt_grads(m);
    for (int i = 0; i < gpt_num_tensors(m); i++) {
        const gpt_tensor *t = gpt_tensor_at(m, i);
        double scale = 0, err = 0;
        for (size_t j = 0; j < t->numel; j++)
            scale = fmax(scale, fabs(fd[t->offset + j]));
        for (size_t j = 0; j < t->numel; j++)
            err = fmax(err, fabs(g[t->offset + j] - fd[t->offset + j]));
        if (!(scale > 1e-4 && err <= 1e-3 * scale + 1e-6))
            printf("    %s: max |grad| %.3g, max err %.3g\n", t->name, scale, err);
        ASSERT(scale > 1e-4); /* no tensor's gradient is trivially zero */
        ASSERT_LE(err, 1e-3 * scale + 1e-6);
    }
    /* a second backward without a forward is refused and changes nothing */
    float g0 = g[0];
    ASSERT_STATUS(gpt_backward(m), MUON_ERR_STATE);
    ASSERT(g[0] == g0);
    /* backward accumulates: two passes give twice the gradient */
    float *g1 = malloc(n * sizeof *g1);
    memcpy(g1, g, n * sizeof *g1);
    gpt_forward(m, tok, tgt, B, T);
    ASSERT_OK(gpt_backward(m));
    for (size_t j = 0; j < n; j++)
        ASSERT_NEAR(g[j], 2 * g1[j], 1e-6 * fmax(1, fabs(g1[j])));
    gpt_zero_grad(m);
    for (size_t j = 0; j < n; j++)
        ASSERT(g[j] == 0.0f);
    free(g1);
    free(pd);
    free(fd);
    gpt_free(m);
}

TEST(nn_gpt_bad_input)
{
    gpt_model *m = tiny_model(11, 6, 1, 8, 2, 2);
    ASSERT(m);
    int32_t tok[12] = {0}, tgt[12] = {0};
    ASSERT(isfinite(gpt_forward(m, tok, tgt, 2, 6)));
    ASSERT(isnan(gpt_forward(m, tok, tgt, 3, 6))); /* B > batch */
    ASSERT(isnan(gpt_forward(m, tok, tgt, 2, 7))); /* T > context */
    ASSERT(isnan(gpt_forward(m, tok, tgt, 0, 6)));
    ASSERT(isnan(gpt_forward(m, NULL, tgt, 1, 6)));
    tok[5] = 11;
    ASSERT(isnan(gpt_forward(m, tok, tgt, 2, 6)));
    tok[5] = 0;
    tgt[11] = -1;
    ASSERT(isnan(gpt_forward(m, tok, tgt, 2, 6)));
    /* the good forward above still awaits its backward: nothing was changed */
    ASSERT_OK(gpt_backward(m));
    ASSERT(isfinite(gpt_forward(m, tok, NULL, 2, 6)));
    ASSERT_STATUS(gpt_backward(m), MUON_ERR_STATE); /* no targets, no backward */
    ASSERT_STATUS(gpt_backward(NULL), MUON_ERR_NULL);
    gpt_free(m);
}

/* loss and gradients of one forward/backward on `threads` OpenMP threads */
static float run_threads(gpt_model *m, const int32_t *tok, const int32_t *tgt, int B, int T,
                         int threads, float *grads)
{
    int old = omp_get_max_threads();
    omp_set_num_threads(threads);
    gpt_zero_grad(m);
    float loss = gpt_forward(m, tok, tgt, B, T);
    gpt_backward(m);
    memcpy(grads, gpt_grads(m), gpt_num_params(m) * sizeof(float));
    omp_set_num_threads(old);
    return loss;
}

/* Loss and gradients on 1 and 2 OpenMP threads agree within float32
 * rounding. Each gradient entry comes out of a chain of at most `depth`
 * reductions (forward and backward through every layer), each a sum of at
 * most K terms (K: the tokens B T, the widths, the vocabulary), and two
 * orders of summing K terms differ by at most 2 K u times the sum of their
 * magnitudes (gamma_K). The bound takes each tensor's largest gradient for
 * that magnitude: loose, and still far below what a part of the batch or of
 * a row lost or counted twice by one thread moves a gradient by. Width 192
 * gives weight gradients with more than 512 rows summed over 1024 tokens. */
TEST(nn_gpt_thread_count_agrees)
{
    tu_rng r;
    tu_seed(&r, mt_seed + 13);
    enum { V = 64, T = 64, BMAX = 16, L = 2 };
    static const int dims[] = {64, 192}, batches[] = {4, 16};
    for (int d = 0; d < 2; d++) {
        const int B = batches[d];
        gpt_model *m = tiny_model(V, T, L, dims[d], 4, B);
        ASSERT(m);
        perturb_params(m, &r, 0.1);
        int32_t tok[BMAX * T], tgt[BMAX * T];
        random_tokens(&r, tok, B * T, V);
        random_tokens(&r, tgt, B * T, V);
        size_t n = gpt_num_params(m);
        float *g1 = malloc(n * sizeof *g1), *g2 = malloc(n * sizeof *g2);
        int blas_old = openblas_get_num_threads();
        openblas_set_num_threads(1);
        float l1 = run_threads(m, tok, tgt, B, T, 1, g1);
        float l2 = run_threads(m, tok, tgt, B, T, 2, g2);
        openblas_set_num_threads(blas_old);
        /* per block: qkv, attention scores, softmax, values, projection,
         * two MLP products, two norms; then the head, the loss and the
         * final norm; backward doubles the chain */
        const double depth = 2.0 * (9 * L + 3);
        double k = fmax(fmax((double)(B * T), 4.0 * dims[d]), (double)V);
        double rel = 2.0 * depth * k * REF_U32;
        int ok = isfinite(l1) && fabs(l1 - l2) <= rel * fabs(l1);
        if (!ok)
            printf("    width %d: loss %.9g vs %.9g\n", dims[d], l1, l2);
        for (int t = 0; t < gpt_num_tensors(m); t++) {
            const gpt_tensor *tt = gpt_tensor_at(m, t);
            double gmax = 0, diff = tu_max_abs_diff_ff(g1 + tt->offset, g2 + tt->offset, tt->numel);
            for (size_t i = 0; i < tt->numel; i++)
                gmax = fmax(gmax, fabs(g1[tt->offset + i]));
            if (!(diff <= rel * gmax)) {
                printf("    width %d, %s: gradients 1 vs 2 threads %.3g > %.3g\n", dims[d],
                       tt->name, diff, rel * gmax);
                ok = 0;
            }
        }
        free(g1);
        free(g2);
        gpt_free(m);
        ASSERT(ok);
    }
}

/* A small model memorises a short repeated text with a plain AdamW loop. */
TEST(nn_gpt_memorises)
{
    enum { V = 16, T = 16, B = 2, P = 12 };
    /* period 12 with repeated tokens (2, 5 and 9 appear twice, followed by
     * different tokens), so the prediction needs the context, not just the
     * current token; the two windows start on different tokens */
    const int32_t period[P] = {2, 5, 9, 2, 7, 1, 5, 11, 9, 14, 3, 0};
    int32_t tok[B * T], tgt[B * T];
    int start[B] = {0, 4};
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            tok[b * T + t] = period[(start[b] + t) % P];
            tgt[b * T + t] = period[(start[b] + t + 1) % P];
        }
    gpt_model *m = tiny_model(V, T, 2, 32, 2, B);
    ASSERT(m);
    size_t n = gpt_num_params(m);
    float *p = gpt_params(m), *g = gpt_grads(m);
    float *mo = calloc(n, sizeof *mo), *ve = calloc(n, sizeof *ve);
    const double lr = 1e-2, b1 = 0.9, b2 = 0.99, eps = 1e-8;
    float loss = 0;
    for (int step = 1; step <= 300; step++) {
        gpt_zero_grad(m);
        loss = gpt_forward(m, tok, tgt, B, T);
        gpt_backward(m);
        double c1 = 1 - pow(b1, step), c2 = 1 - pow(b2, step);
        for (size_t i = 0; i < n; i++) {
            mo[i] = (float)(b1 * mo[i] + (1 - b1) * g[i]);
            ve[i] = (float)(b2 * ve[i] + (1 - b2) * (double)g[i] * g[i]);
            p[i] -= (float)(lr * (mo[i] / c1) / (sqrt(ve[i] / c2) + eps));
        }
    }
    ASSERT_LE(loss, 0.05);
    free(mo);
    free(ve);
    gpt_free(m);
}
