/*
 * train_loop.c - the training loop of muon.h's opening comment, made real.
 *
 * A student two-layer network  Y = tanh(X W1^T + b1) W2^T  learns to match a
 * fixed random teacher network of the same form. The hybrid optimizer routes
 * the hidden matrix W1 to Muon and the bias b1 and the output head W2 to
 * AdamW. Plain loops, no BLAS: the point is the optimizer API.
 *
 * Build against an installed libmuon:
 *     cc -std=c11 -O2 train_loop.c $(pkg-config --cflags --libs muon) -lm -o train_loop
 * Run: ./train_loop [STATE_FILE]   (the optimizer state is saved there at the end)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <muon.h>

enum { N = 256, D_IN = 32, HID = 64, D_OUT = 8, STEPS = 200, PRINT_EVERY = 20 };

/* xorshift64*: a fixed, portable sequence so every run prints the same. */
static unsigned long long rng_state = 0x9e3779b97f4a7c15ull;
static float uniform_pm(float scale)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    unsigned long long r = rng_state * 2685821657736338717ull;
    return scale * (float)((double)(r >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static void fill(float *x, size_t n, float scale)
{
    for (size_t i = 0; i < n; i++)
        x[i] = uniform_pm(scale);
}

/* h = tanh(x w1^T + b1) (N x HID), y = h w2^T (N x D_OUT). */
static void forward(const float *x, const float *w1, const float *b1, const float *w2, float *h,
                    float *y)
{
    for (int n = 0; n < N; n++) {
        for (int j = 0; j < HID; j++) {
            float z = b1[j];
            for (int k = 0; k < D_IN; k++)
                z += x[n * D_IN + k] * w1[j * D_IN + k];
            h[n * HID + j] = tanhf(z);
        }
        for (int o = 0; o < D_OUT; o++) {
            float s = 0;
            for (int j = 0; j < HID; j++)
                s += h[n * HID + j] * w2[o * HID + j];
            y[n * D_OUT + o] = s;
        }
    }
}

/* loss = 1/(2N) sum ||y - t||^2; fills the three gradients. */
static double forward_backward(const float *x, const float *t, const float *w1, const float *b1,
                               const float *w2, float *h, float *y, float *g1, float *gb1,
                               float *g2)
{
    forward(x, w1, b1, w2, h, y);
    double loss = 0;
    for (int i = 0; i < HID * D_IN; i++)
        g1[i] = 0;
    for (int i = 0; i < HID; i++)
        gb1[i] = 0;
    for (int i = 0; i < D_OUT * HID; i++)
        g2[i] = 0;
    for (int n = 0; n < N; n++) {
        float dy[D_OUT], dz[HID];
        for (int o = 0; o < D_OUT; o++) {
            float e = y[n * D_OUT + o] - t[n * D_OUT + o];
            loss += 0.5 * (double)e * e / N;
            dy[o] = e / N;
        }
        for (int j = 0; j < HID; j++) {
            float hj = h[n * HID + j], dh = 0;
            for (int o = 0; o < D_OUT; o++) {
                dh += dy[o] * w2[o * HID + j];
                g2[o * HID + j] += dy[o] * hj;
            }
            dz[j] = dh * (1 - hj * hj);
            gb1[j] += dz[j];
        }
        for (int j = 0; j < HID; j++)
            for (int k = 0; k < D_IN; k++)
                g1[j * D_IN + k] += dz[j] * x[n * D_IN + k];
    }
    return loss;
}

/* Cosine decay to 10% of the peak learning rate. */
static double schedule(int step)
{
    return 0.1 + 0.9 * 0.5 * (1 + cos(3.14159265358979 * step / STEPS));
}

int main(int argc, char **argv)
{
    static float x[N * D_IN], t[N * D_OUT], h[N * HID], y[N * D_OUT];
    static float tw1[HID * D_IN], tb1[HID], tw2[D_OUT * HID];            /* teacher */
    static float w1[HID * D_IN], b1[HID], w2[D_OUT * HID];               /* student */
    static float g1[HID * D_IN], gb1[HID], g2[D_OUT * HID];              /* gradients */

    fill(x, N * D_IN, 1.0f);
    fill(tw1, HID * D_IN, 0.5f);
    fill(tb1, HID, 0.5f);
    fill(tw2, D_OUT * HID, 0.5f);
    forward(x, tw1, tb1, tw2, h, t);
    fill(w1, HID * D_IN, 0.3f);
    fill(w2, D_OUT * HID, 0.1f);

    muon_opt_config cfg = muon_opt_config_default(); /* Moonlight recipe */
    cfg.lr = 0.02;
    cfg.adam_lr = 0.01;
    cfg.weight_decay = 0.0;
    cfg.adam_weight_decay = 0.0;
    cfg.threads = 1; /* matrices this small gain nothing from more threads */
    muon_opt *opt;
    muon_status s = muon_opt_create(&cfg, &opt);
    if (s != MUON_OK) {
        fprintf(stderr, "muon_opt_create: %s\n", muon_strerror(s));
        return 1;
    }
    long s_w1[2] = {HID, D_IN}, s_b1[1] = {HID}, s_w2[2] = {D_OUT, HID};
    if ((s = muon_opt_add_param(opt, "w1", w1, g1, 2, s_w1, MUON_ROLE_MATRIX, NULL)) ||
        (s = muon_opt_add_param(opt, "b1", b1, gb1, 1, s_b1, MUON_ROLE_VECTOR, NULL)) ||
        (s = muon_opt_add_param(opt, "w2", w2, g2, 2, s_w2, MUON_ROLE_HEAD, NULL)) ||
        (s = muon_opt_finalize(opt))) {
        fprintf(stderr, "setting up the optimizer: %s: %s\n", muon_strerror(s),
                muon_opt_error(opt));
        muon_opt_free(opt);
        return 1;
    }

    printf("muon %s: %d params, %zu bytes of optimizer state\n", muon_version(),
           muon_opt_num_params(opt), muon_opt_state_bytes(opt));
    double first = 0, loss = 0;
    for (int step = 0; step < STEPS; step++) {
        loss = forward_backward(x, t, w1, b1, w2, h, y, g1, gb1, g2);
        if (step == 0)
            first = loss;
        if (step % PRINT_EVERY == 0)
            printf("step %3d  loss %.6f\n", step, loss);
        s = muon_opt_step(opt, schedule(step));
        if (s != MUON_OK) {
            fprintf(stderr, "step %d: %s: %s\n", step, muon_strerror(s), muon_opt_error(opt));
            muon_opt_free(opt);
            return 1;
        }
    }
    forward(x, w1, b1, w2, h, y);
    loss = 0;
    for (int i = 0; i < N * D_OUT; i++)
        loss += 0.5 * (double)(y[i] - t[i]) * (y[i] - t[i]) / N;
    printf("final loss %.6f (initial %.6f)\n", loss, first);

    if (argc > 1 && (s = muon_opt_save(opt, argv[1])) != MUON_OK) {
        fprintf(stderr, "saving %s: %s: %s\n", argv[1], muon_strerror(s), muon_opt_error(opt));
        muon_opt_free(opt);
        return 1;
    }
    muon_opt_free(opt);
    return loss < first ? 0 : 1;
}
