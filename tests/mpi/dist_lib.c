/* The distributed optimizer against the single-process one, run under
 * mpirun by tests/test_dist.c. Each rank's gradient is a multiple of 1/64
 * between -1 and 1, so the sum over up to 64 ranks is exact in fp32 in any
 * order: the distributed step sees the same summed gradient as a muon_opt
 * given the sum, and with fp32 gathers it must produce the same bits
 * (the element arithmetic is the same; the orthogonalization is the same
 * call on the same input). The shapes include blocks that do not divide
 * evenly and a parameter with fewer elements than ranks.
 * The bf16 gather of ZERO1 rounds the input, so it is checked for
 * agreement between the ranks and for its bytes instead.
 * Prints "ok NAME" / "FAIL NAME: ..." per check on rank 0; exit status 0
 * when every rank passed everything. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "muon_dist.h"

typedef struct {
    const char *name;
    int ndim;
    long shape[2];
    muon_role role;
} spec;

static const spec specs[] = {
    {"wte", 2, {10, 8}, MUON_ROLE_EMBEDDING},
    {"h.0.qkv", 2, {24, 8}, MUON_ROLE_MATRIX},
    {"h.0.fc", 2, {7, 5}, MUON_ROLE_MATRIX},
    {"h.0.tiny", 2, {1, 2}, MUON_ROLE_MATRIX},
    {"ln", 1, {13, 0}, MUON_ROLE_VECTOR},
    {"head", 2, {9, 8}, MUON_ROLE_HEAD},
};
#define NP ((int)(sizeof specs / sizeof specs[0]))
#define STEPS 4

static int rank, size, failures;

static void check(int ok, const char *name, const char *detail)
{
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (rank == 0)
        printf("%s %s%s%s\n", all ? "ok" : "FAIL", name, all ? "" : ": ", all ? "" : detail);
    if (!all)
        failures++;
}

static size_t numel(const spec *s)
{
    return s->ndim == 1 ? (size_t)s->shape[0] : (size_t)s->shape[0] * (size_t)s->shape[1];
}

/* A multiple of 1/64 in [-1, 1] from (step, rank, param, element). */
static float grad_value(int step, int r, int p, size_t i)
{
    unsigned long long x = (unsigned long long)step * 1000003ULL + (unsigned long long)r * 7919ULL +
                           (unsigned long long)p * 104729ULL + i * 2654435761ULL;
    x ^= x >> 13;
    x *= 0x9E3779B97F4A7C15ULL;
    x ^= x >> 29;
    return (float)((int)(x % 129) - 64) / 64.0f;
}

typedef struct {
    float *w[NP], *g[NP];
} model;

static void model_init(model *m)
{
    for (int p = 0; p < NP; p++) {
        size_t n = numel(&specs[p]);
        m->w[p] = malloc(n * sizeof(float));
        m->g[p] = malloc(n * sizeof(float));
        for (size_t i = 0; i < n; i++)
            m->w[p][i] = (float)sin((double)(p * 31 + (int)i)) * 0.1f;
    }
}

static void model_free(model *m)
{
    for (int p = 0; p < NP; p++) {
        free(m->w[p]);
        free(m->g[p]);
    }
}

/* This rank's gradient (mine = 1) or the exact sum over every rank. */
static void fill_grads(model *m, int step, int mine)
{
    for (int p = 0; p < NP; p++)
        for (size_t i = 0; i < numel(&specs[p]); i++) {
            float v = 0;
            for (int r = 0; r < size; r++)
                if (!mine || r == rank)
                    v += grad_value(step, r, p, i);
            m->g[p][i] = v;
        }
}

static muon_opt_config config(void)
{
    muon_opt_config c = muon_opt_config_default();
    c.lr = 0.02;
    c.adam_lr = 0.01;
    c.threads = 1;
    return c;
}

static muon_dist *make_dist(muon_dist_mode mode, model *m, int bf16)
{
    muon_opt_config c = config();
    muon_dist *d = NULL;
    if (muon_dist_create(&c, mode, MPI_COMM_WORLD, &d) != MUON_OK)
        return NULL;
    muon_dist_set_gather_bf16(d, bf16);
    for (int p = 0; p < NP; p++)
        muon_dist_add_param(d, specs[p].name, m->w[p], m->g[p], specs[p].ndim, specs[p].shape,
                            specs[p].role);
    if (muon_dist_finalize(d) != MUON_OK) {
        fprintf(stderr, "rank %d: finalize: %s\n", rank, muon_dist_error(d));
        muon_dist_free(d);
        return NULL;
    }
    return d;
}

static muon_opt *make_ref(model *m)
{
    muon_opt_config c = config();
    muon_opt *o = NULL;
    muon_opt_create(&c, &o);
    for (int p = 0; p < NP; p++)
        muon_opt_add_param(o, specs[p].name, m->w[p], m->g[p], specs[p].ndim, specs[p].shape,
                           specs[p].role, NULL);
    muon_opt_finalize(o);
    return o;
}

/* Largest |a - b| over the weights; NaN counts as infinite. */
static double max_diff(const model *a, const model *b)
{
    double worst = 0;
    for (int p = 0; p < NP; p++)
        for (size_t i = 0; i < numel(&specs[p]); i++) {
            double x = fabs((double)a->w[p][i] - (double)b->w[p][i]);
            if (!(x <= worst))
                worst = isnan(x) ? INFINITY : x;
        }
    return worst;
}

/* STEPS steps of the mode next to the reference: identical bits, and a
 * saved state that is byte for byte the reference's. */
static void same_as_one_process(muon_dist_mode mode)
{
    model dm, rm;
    model_init(&dm);
    model_init(&rm);
    muon_dist *d = make_dist(mode, &dm, 0);
    muon_opt *o = make_ref(&rm);
    char name[128], detail[256] = "";
    int ok = d && o;
    for (int s = 0; ok && s < STEPS; s++) {
        fill_grads(&dm, s, 1);
        fill_grads(&rm, s, 0);
        muon_status a = muon_dist_step(d, 1.0), b = muon_opt_step(o, 1.0);
        if (a != MUON_OK || b != MUON_OK) {
            snprintf(detail, sizeof detail, "step %d: %s / %s", s, muon_dist_error(d),
                     muon_opt_error(o));
            ok = 0;
        }
    }
    double diff = ok ? max_diff(&dm, &rm) : INFINITY;
    if (ok && diff != 0) {
        snprintf(detail, sizeof detail, "rank %d: max |W_dist - W_1| = %.3g, want 0", rank, diff);
        ok = 0;
    }
    snprintf(name, sizeof name, "%s_P%d_equals_one_process", muon_dist_mode_name(mode), size);
    check(ok, name, detail);

    /* the saved state is the single-process blob */
    void *blob = NULL;
    size_t len = 0;
    int sok = d && muon_dist_save_alloc(d, 0, &blob, &len) == MUON_OK;
    if (sok && rank == 0) {
        size_t rl = 0;
        muon_opt_serialized_size(o, &rl);
        void *ref = malloc(rl);
        muon_opt_save_buffer(o, ref, rl, &rl);
        sok = rl == len && memcmp(ref, blob, len) == 0;
        free(ref);
    }
    snprintf(name, sizeof name, "%s_P%d_state_is_the_one_process_blob", muon_dist_mode_name(mode),
             size);
    check(sok, name, "the gathered state differs from muon_opt_save_buffer's");

    /* zero1 keeps 1/P: its parts are the balanced blocks */
    if (mode == MUON_DIST_ZERO1 && d) {
        muon_dist_stats st;
        muon_dist_get_stats(d, &st);
        size_t want = 0;
        for (int p = 0; p < NP; p++) {
            size_t n = numel(&specs[p]), blk = n / (size_t)size + ((size_t)rank < n % (size_t)size);
            want += (specs[p].role == MUON_ROLE_MATRIX ? 1 : 2) * blk * sizeof(float);
        }
        snprintf(detail, sizeof detail, "rank %d: state %zu bytes, want %zu", rank,
                 st.state_bytes, want);
        snprintf(name, sizeof name, "zero1_P%d_state_is_its_blocks", size);
        check(st.state_bytes == want, name, detail);
    }
    free(blob);
    muon_dist_free(d);
    muon_opt_free(o);
    model_free(&dm);
    model_free(&rm);
}

/* Resume: the reference state after 2 steps loads into each mode, and 2
 * more steps match the reference's 4. */
static void resume_from_one_process_state(muon_dist_mode mode)
{
    model dm, rm;
    model_init(&dm);
    model_init(&rm);
    muon_opt *o = make_ref(&rm);
    int ok = 1;
    for (int s = 0; s < 2; s++) {
        fill_grads(&rm, s, 0);
        ok = ok && muon_opt_step(o, 1.0) == MUON_OK;
    }
    size_t len = 0;
    muon_opt_serialized_size(o, &len);
    void *blob = malloc(len);
    muon_opt_save_buffer(o, blob, len, &len);
    for (int p = 0; p < NP; p++)
        memcpy(dm.w[p], rm.w[p], numel(&specs[p]) * sizeof(float));
    muon_dist *d = make_dist(mode, &dm, 0);
    char detail[256] = "", name[128];
    if (!d || muon_dist_load_buffer(d, blob, len) != MUON_OK) {
        snprintf(detail, sizeof detail, "load: %s", d ? muon_dist_error(d) : "no optimizer");
        ok = 0;
    }
    for (int s = 2; ok && s < STEPS; s++) {
        fill_grads(&dm, s, 1);
        fill_grads(&rm, s, 0);
        ok = muon_dist_step(d, 1.0) == MUON_OK && muon_opt_step(o, 1.0) == MUON_OK;
    }
    double diff = max_diff(&dm, &rm);
    if (ok && diff != 0)
        snprintf(detail, sizeof detail, "max diff %.3g after resuming", diff);
    snprintf(name, sizeof name, "%s_P%d_resumes_one_process_state", muon_dist_mode_name(mode),
             size);
    check(ok && diff == 0, name, detail);
    free(blob);
    muon_dist_free(d);
    muon_opt_free(o);
    model_free(&dm);
    model_free(&rm);
}

/* A NaN in one rank's gradient of one parameter: every rank skips that
 * parameter and updates the others. */
static void nonfinite_is_skipped_everywhere(void)
{
    model dm, before;
    model_init(&dm);
    model_init(&before);
    muon_dist *d = make_dist(MUON_DIST_ZERO1, &dm, 0);
    fill_grads(&dm, 0, 1);
    if (rank == size - 1)
        dm.g[2][3] = NAN;
    muon_status s = d ? muon_dist_step(d, 1.0) : MUON_ERR_NULL;
    int same = memcmp(dm.w[2], before.w[2], numel(&specs[2]) * sizeof(float)) == 0;
    int moved = memcmp(dm.w[1], before.w[1], numel(&specs[1]) * sizeof(float)) != 0;
    int named = d && strstr(muon_dist_error(d), "h.0.fc") != NULL;
    check(s == MUON_ERR_NONFINITE && same && moved && named, "nonfinite_gradient_skipped_on_all",
          d ? muon_dist_error(d) : "no optimizer");
    muon_dist_free(d);
    model_free(&dm);
    model_free(&before);
}

/* ZERO1 with the bf16 gather: every rank ends with the same bits (they all
 * orthogonalize the same rounded input), and the bytes sent per step are
 * 4 + 2 + 4 per element of a Muon matrix outside the rank's block, 4 + 4
 * for the rest (docs/distributed.md). */
static void bf16_gather_agrees_and_sends_less(void)
{
    model dm;
    model_init(&dm);
    muon_dist *d = make_dist(MUON_DIST_ZERO1, &dm, 1);
    int ok = d != NULL;
    for (int s = 0; ok && s < STEPS; s++) {
        fill_grads(&dm, s, 1);
        ok = muon_dist_step(d, 1.0) == MUON_OK;
    }
    size_t want = 0;
    for (int p = 0; p < NP; p++) {
        size_t n = numel(&specs[p]), blk = n / (size_t)size + ((size_t)rank < n % (size_t)size);
        want += (specs[p].role == MUON_ROLE_MATRIX ? 10 : 8) * (n - blk);
    }
    muon_dist_stats st = {0};
    if (d)
        muon_dist_get_stats(d, &st);
    /* the same bits everywhere: rank 0's weights against each rank's */
    int same = 1;
    for (int p = 0; p < NP; p++) {
        size_t n = numel(&specs[p]);
        float *w0 = malloc(n * sizeof(float));
        memcpy(w0, dm.w[p], n * sizeof(float));
        MPI_Bcast(w0, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
        same = same && memcmp(w0, dm.w[p], n * sizeof(float)) == 0;
        free(w0);
    }
    char detail[256];
    snprintf(detail, sizeof detail, "rank %d: ok %d, same bits %d, comm %zu bytes, want %zu", rank,
             ok, same, st.comm_bytes, want);
    check(ok && same && st.comm_bytes == want, "zero1_bf16_gather_agrees_and_sends_10_bytes",
          detail);
    muon_dist_free(d);
    model_free(&dm);
}

/* Ranks that register different shapes get MUON_ERR_MISMATCH, not a hang. */
static void mismatched_registration_fails(void)
{
    muon_opt_config c = config();
    muon_dist *d = NULL;
    float w[64] = {0}, g[64] = {0};
    long shape[2] = {4, rank == 0 ? 4 : 2};
    muon_dist_create(&c, MUON_DIST_ZERO1, MPI_COMM_WORLD, &d);
    muon_dist_add_param(d, "m", w, g, 2, shape, MUON_ROLE_MATRIX);
    muon_status s = muon_dist_finalize(d);
    check(size == 1 ? s == MUON_OK : s == MUON_ERR_MISMATCH, "mismatched_registration_is_an_error",
          muon_dist_error(d));
    muon_dist_free(d);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    for (int m = 0; m < MUON_DIST_MODE_COUNT; m++) {
        same_as_one_process((muon_dist_mode)m);
        resume_from_one_process_state((muon_dist_mode)m);
    }
    nonfinite_is_skipped_everywhere();
    bf16_gather_agrees_and_sends_less();
    mismatched_registration_fails();
    MPI_Finalize();
    return failures ? 1 : 0;
}
