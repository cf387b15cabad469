/* The training loop: data -> model -> optimizer, with evaluation, metrics,
 * progress, a checkpoint at the end (or at --stop-at) and resumption that
 * continues bit-identically. Every input is checked before any file in the
 * output directory is touched. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <omp.h>

#include "io/crc32.h"
#include "data/data.h"
#include "train/metrics.h"
#include "train/par.h"
#include "train/train.h"

typedef struct {
    train_config cfg;
    tok_tokenizer tok;
    data_set ds;
    data_loader loader;
    data_val val;
    gpt_model *model;
    muon_opt *opt;
    /* --dist: this rank's optimizer and its slice [b_lo, b_lo + b_n) of
     * every global batch */
    train_par_opt *popt;
    int dist, rank, size, b_lo, b_n;
    int32_t *inputs, *targets;
    uint32_t data_crc;
    long start_step;
    double wall_offset;
    metrics_log log;
    int have_tok, have_ds, have_loader;
} run_state;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint32_t tokens_crc(const data_tokens *t)
{
    return io_crc32(0, t->ids, t->n * sizeof(int32_t));
}

static int make_dir(const char *path, char *err, size_t errcap)
{
    char buf[TRAIN_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            break;
        *p = '/';
    }
    struct stat st;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
        snprintf(err, errcap, "cannot create output directory %s: %s", path, strerror(errno));
        return -1;
    }
    if (stat(buf, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errcap, "output path %s exists and is not a directory", path);
        return -1;
    }
    return 0;
}

static int setup_optimizer(run_state *r, char *err, size_t errcap)
{
    const train_config *c = &r->cfg;
    muon_opt_config oc = train_opt_config(c);
    if (r->dist)
        return train_par_opt_create(&oc, c->dist, c->dist_overlap, c->dist_bf16, r->model,
                                    &r->popt, err, errcap);
    muon_status s = muon_opt_create(&oc, &r->opt);
    if (s != MUON_OK) {
        snprintf(err, errcap, "optimizer: %s", muon_strerror(s));
        return -1;
    }
    float *w = gpt_params(r->model), *g = gpt_grads(r->model);
    for (int i = 0; i < gpt_num_tensors(r->model); i++) {
        const gpt_tensor *t = gpt_tensor_at(r->model, i);
        s = muon_opt_add_param(r->opt, t->name, w + t->offset, g + t->offset, t->ndim, t->shape,
                               t->role, NULL);
        if (s != MUON_OK) {
            snprintf(err, errcap, "optimizer: %s", muon_opt_error(r->opt));
            return -1;
        }
    }
    if ((s = muon_opt_finalize(r->opt)) != MUON_OK) {
        snprintf(err, errcap, "optimizer: %s", muon_opt_error(r->opt));
        return -1;
    }
    return 0;
}

/* Everything that can fail on bad input, before any output file changes. */
/* The restart steps in effect (0 selects the default). */
static unsigned restarts_of(const muon_ortho_config *o)
{
    return o->gram_restarts ? o->gram_restarts : MUON_GRAM_DEFAULT_RESTARTS;
}

static int dist_agree(const run_state *r, int rc, char *err, size_t errcap);

/* Everything a rank does alone comes first, then one agreement over the
 * ranks, then the collective part (the optimizer, its state): a rank that
 * failed alone, e.g. without the data file on its host, must not leave
 * the others waiting in a collective it never joins. */
static int setup(run_state *r, const char *resume, char *err, size_t errcap)
{
    train_config *c = &r->cfg;
    char derr[DATA_ERR_LEN];
    train_ckpt ck;
    memset(&ck, 0, sizeof ck);
    int rc = 1;
    if (resume && train_ckpt_load(resume, &ck, err, errcap))
        goto agree;
    if (resume) {
        /* the checkpoint fixes the model and data; the command line may only
         * change how far to go (and threads / output / eval cadence) */
        const train_config *k = &ck.cfg;
        const char *clash = NULL;
        if (c->model.context != k->model.context || c->model.layers != k->model.layers ||
            c->model.dim != k->model.dim || c->model.heads != k->model.heads)
            clash = "model shape (--layers/--dim/--heads/--context)";
        else if (c->batch != k->batch)
            clash = "--batch";
        else if (c->optim != k->optim)
            clash = "--optim";
        else if (c->tokenizer != k->tokenizer)
            clash = "--tokenizer";
        else if (c->ortho.method != k->ortho.method || c->ortho.coeffs != k->ortho.coeffs ||
                 c->ortho.taylor_k != k->ortho.taylor_k || c->ortho.steps != k->ortho.steps ||
                 restarts_of(&c->ortho) != restarts_of(&k->ortho))
            clash = "orthogonalization (--ortho-method/--coeffs/--ns-steps/--restarts)";
        else if (c->ortho.precision != k->ortho.precision)
            clash = "--precision";
        else if (c->steps < ck.step)
            clash = "--steps (smaller than the checkpoint's step)";
        if (clash) {
            snprintf(err, errcap, "checkpoint %s was trained with a different %s", resume, clash);
            rc = 2;
            goto agree;
        }
        /* nothing left to run: going on would save the checkpoint's
         * parameters under a smaller step (--stop-at below it) or report
         * a run without a single step */
        long end = c->stop_at > 0 ? c->stop_at : c->steps;
        if (end <= ck.step) {
            snprintf(err, errcap,
                     "checkpoint %s is already at step %ld; %s %ld leaves nothing to run",
                     resume, ck.step, c->stop_at > 0 ? "--stop-at" : "--steps", end);
            rc = 2;
            goto agree;
        }
    }
    if (c->tokenizer == TOK_GPT2 && !c->bpe_dir[0]) {
        tok_init_gpt2_ids(&r->tok); /* shards: ids only */
    } else if (c->tokenizer == TOK_GPT2) {
        if (tok_load_gpt2_dir(&r->tok, c->bpe_dir, derr)) {
            snprintf(err, errcap, "%s", derr);
            goto agree;
        }
    } else
        tok_init_byte(&r->tok);
    r->have_tok = 1;
    c->model.vocab = r->tok.vocab_size;
    if (data_load(c->data, &r->tok, DATA_VAL_FRACTION, &r->ds, derr)) {
        snprintf(err, errcap, "%s", derr);
        goto agree;
    }
    r->have_ds = 1;
    if (r->ds.val.n < (size_t)c->model.context + 1) {
        snprintf(err, errcap, "%s: validation part has %zu tokens; need at least %d for context %d",
                 c->data, r->ds.val.n, c->model.context + 1, c->model.context);
        goto agree;
    }
    if (data_loader_init(&r->loader, r->ds.train.ids, r->ds.train.n, c->batch, c->model.context,
                         c->seed, "training data", derr) ||
        data_val_init(&r->val, r->ds.val.ids, r->ds.val.n, c->batch, c->model.context,
                      c->eval_batches, "validation data", derr)) {
        snprintf(err, errcap, "%s: %s", c->data, derr);
        goto agree;
    }
    r->have_loader = 1;
    r->data_crc = tokens_crc(&r->ds.train);
    muon_status s = gpt_create(&c->model, r->b_n, &r->model);
    if (s == MUON_OK) /* the model's products follow the optimizer's precision */
        s = gpt_set_precision(r->model, c->ortho.precision);
    if (s != MUON_OK) {
        snprintf(err, errcap, "cannot build the model: %s", muon_strerror(s));
        goto agree;
    }
    gpt_init_params(r->model, c->seed);
    size_t tok_bytes = (size_t)c->batch * (size_t)c->model.context * sizeof(int32_t);
    r->inputs = malloc(tok_bytes);
    r->targets = malloc(tok_bytes);
    if (!r->inputs || !r->targets) {
        snprintf(err, errcap, "out of memory for the token batches (2 x %zu bytes)", tok_bytes);
        goto agree;
    }
    if (resume && ck.data_crc != r->data_crc) {
        snprintf(err, errcap, "checkpoint %s was trained on different data than %s", resume,
                 c->data);
        goto agree;
    }
    if (resume && ck.n_params != gpt_num_params(r->model)) {
        snprintf(err, errcap, "checkpoint %s holds a different model", resume);
        goto agree;
    }
    rc = 0;
agree:
    if (r->dist)
        rc = dist_agree(r, rc, err, errcap);
    if (rc) {
        train_ckpt_free(&ck);
        return rc;
    }
    if (setup_optimizer(r, err, errcap))
        goto fail;
    if (resume) {
        data_loader_state ds;
        memcpy(&ds, ck.data_state, sizeof ds);
        s = r->dist ? train_par_opt_load(r->popt, ck.opt_state, ck.opt_state_len)
                    : muon_opt_load_buffer(r->opt, ck.opt_state, ck.opt_state_len);
        if (s != MUON_OK) {
            snprintf(err, errcap, "checkpoint %s: optimizer state: %s", resume,
                     r->dist ? train_par_opt_error(r->popt) : muon_opt_error(r->opt));
            goto fail;
        }
        if (data_loader_state_set(&r->loader, &ds, derr)) {
            snprintf(err, errcap, "checkpoint %s: %s", resume, derr);
            goto fail;
        }
        memcpy(gpt_params(r->model), ck.params, ck.n_params * sizeof(float));
        r->start_step = ck.step;
        r->wall_offset = ck.wall_s;
    }
    rc = 0;
    goto done;
fail:
    rc = 1;
done:
    train_ckpt_free(&ck);
    /* every rank that passed the agreement above reaches this one */
    return r->dist ? dist_agree(r, rc, err, errcap) : rc;
}

static void teardown(run_state *r)
{
    free(r->inputs);
    free(r->targets);
    muon_opt_free(r->opt);
    train_par_opt_free(r->popt);
    gpt_free(r->model);
    if (r->have_loader)
        data_loader_free(&r->loader);
    if (r->have_ds)
        data_set_free(&r->ds);
    if (r->have_tok)
        tok_free(&r->tok);
}

/* The mean loss of this rank's slice of the batch in r->inputs, weighted
 * by the slice's share of the batch, so the ranks' values sum to the
 * batch's mean loss. */
static double slice_loss(run_state *r)
{
    const train_config *c = &r->cfg;
    size_t off = (size_t)r->b_lo * (size_t)c->model.context;
    float loss = gpt_forward(r->model, r->inputs + off, r->targets + off, r->b_n, c->model.context);
    return r->dist ? (double)loss * r->b_n / c->batch : (double)loss;
}

/* *st: MUON_OK, or the status of a product that failed in a batch */
static double evaluate(run_state *r, muon_status *st)
{
    double sum = 0;
    *st = MUON_OK;
    for (int b = 0; b < r->val.n_batches; b++) {
        data_val_batch(&r->val, b, r->inputs, r->targets);
        sum += slice_loss(r);
        if (*st == MUON_OK)
            *st = gpt_forward_status(r->model);
    }
    if (r->dist)
        train_par_sum(&sum, 1);
    return sum / r->val.n_batches;
}

static volatile sig_atomic_t stop_signal;

void train_request_stop(int sig)
{
    stop_signal = sig;
}

/* The gradient of the batch's mean loss is the sum over ranks of each
 * slice's mean-loss gradient times the slice's share. */
static void scale_grads(run_state *r)
{
    if (!r->dist || r->b_n == r->cfg.batch)
        return;
    const float share = (float)((double)r->b_n / r->cfg.batch);
    float *g = gpt_grads(r->model);
    for (size_t i = 0, n = gpt_num_params(r->model); i < n; i++)
        g[i] *= share;
}

/* path NULL: DIR/checkpoint.bin */
static int save_checkpoint(run_state *r, const char *path_or_null, long step, double wall,
                           char *err, size_t errcap)
{
    train_ckpt ck;
    memset(&ck, 0, sizeof ck);
    ck.cfg = r->cfg;
    ck.step = step;
    ck.wall_s = wall;
    ck.data_crc = r->data_crc;
    data_loader_state ds;
    data_loader_state_get(&r->loader, &ds);
    memcpy(ck.data_state, &ds, sizeof ds);
    ck.params = gpt_params(r->model);
    ck.n_params = gpt_num_params(r->model);
    if (r->dist) {
        /* collective: every rank sends its part, rank 0 writes */
        muon_status s = train_par_opt_save(r->popt, &ck.opt_state, &ck.opt_state_len);
        int rc = 0;
        if (s != MUON_OK) {
            snprintf(err, errcap, "optimizer state: %s", train_par_opt_error(r->popt));
            rc = -1;
        } else if (r->rank == 0) {
            char path[TRAIN_PATH_MAX + 32];
            snprintf(path, sizeof path, "%s/checkpoint.bin", r->cfg.out_dir);
            rc = train_ckpt_save(path_or_null ? path_or_null : path, &ck, err, errcap);
        }
        free(ck.opt_state);
        return rc;
    }
    if (muon_opt_serialized_size(r->opt, &ck.opt_state_len) != MUON_OK ||
        !(ck.opt_state = malloc(ck.opt_state_len))) {
        snprintf(err, errcap, "out of memory saving the optimizer state");
        return -1;
    }
    size_t written = 0;
    muon_status s = muon_opt_save_buffer(r->opt, ck.opt_state, ck.opt_state_len, &written);
    int rc = -1;
    if (s != MUON_OK)
        snprintf(err, errcap, "optimizer state: %s", muon_opt_error(r->opt));
    else {
        ck.opt_state_len = written;
        char path[TRAIN_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/checkpoint.bin", r->cfg.out_dir);
        rc = train_ckpt_save(path_or_null ? path_or_null : path, &ck, err, errcap);
    }
    free(ck.opt_state);
    return rc;
}

static int grads_finite(gpt_model *m)
{
    const float *g = gpt_grads(m);
    size_t n = gpt_num_params(m);
    float acc = 0;
    /* a NaN or Inf anywhere makes the sum of products with zero non-finite */
    for (size_t i = 0; i < n; i++)
        acc += g[i] * 0.0f;
    return acc == 0.0f;
}

static void poison_if_asked(run_state *r, long step)
{
    for (int i = 0; i < r->cfg.n_nan_at; i++)
        if (r->cfg.nan_at[i] == step)
            gpt_grads(r->model)[0] = NAN;
}

/* Under --dist only the step count decides: the ranks' clocks would
 * disagree about the minutes, and the save is collective. */
static int periodic_due(const run_state *r, long step, double since_s)
{
    const train_config *c = &r->cfg;
    return (c->checkpoint_every > 0 && step % c->checkpoint_every == 0) ||
           (!r->dist && c->checkpoint_minutes > 0 && since_s >= 60.0 * c->checkpoint_minutes);
}

static int save_periodic(run_state *r, long step, double wall, char *err, size_t errcap)
{
    char path[TRAIN_PATH_MAX + 32];
    if (train_periodic_path(path, sizeof path, r->cfg.out_dir, step)) {
        snprintf(err, errcap, "output directory name too long for a checkpoint");
        return -1;
    }
    if (save_checkpoint(r, path, step, wall, err, errcap))
        return -1;
    if (r->rank != 0)
        return 0;
    return train_prune_checkpoints(r->cfg.out_dir, r->cfg.keep_checkpoints, err, errcap);
}

/* 0, or -1 when out of memory: the caller's report (compare's table and
 * plot) must not silently miss an evaluation */
static int record_eval(train_result *res, long step, double loss, double wall)
{
    if (!res)
        return 0;
    int n = res->n_evals;
    long *s = realloc(res->eval_step, sizeof(long) * (size_t)(n + 1));
    if (s)
        res->eval_step = s;
    double *l = realloc(res->eval_loss, sizeof(double) * (size_t)(n + 1));
    if (l)
        res->eval_loss = l;
    double *w = realloc(res->eval_wall, sizeof(double) * (size_t)(n + 1));
    if (w)
        res->eval_wall = w;
    if (!s || !l || !w)
        return -1;
    res->eval_step[n] = step;
    res->eval_loss[n] = loss;
    res->eval_wall[n] = wall;
    res->n_evals = n + 1;
    return 0;
}

/* --dist: the process group, this rank's slice of the batch and its
 * thread count. 0, or 2 with a message (the same on every rank). */
static int dist_begin(run_state *r, char *err, size_t errcap)
{
    train_config *c = &r->cfg;
    r->dist = c->dist[0] != 0;
    r->size = 1;
    r->b_n = c->batch;
    if (!r->dist)
        return 0;
    if (!train_par_available()) {
        snprintf(err, errcap, "--dist needs muon built with Open MPI (libopenmpi-dev); this "
                              "build has none");
        return 2;
    }
    if (train_par_mode_valid(c->dist)) {
        snprintf(err, errcap, "--dist must be ddp, zero1 or owner, got '%s'", c->dist);
        return 2;
    }
    r->rank = train_par_rank();
    r->size = train_par_size();
    if (c->batch < r->size) {
        /* every rank finds this; rank 0 says it, and the others wait until
         * it has, or mpirun could end the job before the message is out */
        if (r->rank == 0) {
            fprintf(stderr, "muon train: --batch (%d) must be at least the number of ranks (%d): "
                            "every rank trains on a slice of each batch\n", c->batch, r->size);
            fflush(stderr);
        }
        double together = 0;
        train_par_sum(&together, 1);
        err[0] = 0;
        return 2;
    }
    int q = c->batch / r->size, extra = c->batch % r->size;
    r->b_n = q + (r->rank < extra);
    r->b_lo = r->rank * q + (r->rank < extra ? r->rank : extra);
    if (c->threads == 0)
        c->threads = train_par_default_threads(omp_get_num_procs());
    if (r->rank != 0)
        c->progress = TRAIN_PROGRESS_QUIET;
    return 0;
}

/* --dist: every rank ends with the worst rc; a message is kept by rank 0,
 * or by the ranks that failed when rank 0 did not, each naming itself. */
static int dist_agree(const run_state *r, int rc, char *err, size_t errcap)
{
    if (!r->dist)
        return rc;
    int rc0 = 0, all = train_par_agree(rc, &rc0);
    if (all == 0)
        return 0;
    if (rc == 0 || (r->rank != 0 && rc0 != 0))
        err[0] = 0;
    else if (r->rank != 0) {
        char tmp[TRAIN_ERR_LEN];
        snprintf(tmp, sizeof tmp, "%s", err);
        snprintf(err, errcap, "rank %d: %s", r->rank, tmp);
    }
    return all;
}

/* One training step: the loss of the global batch (summed over the ranks
 * before anyone steps, so every rank agrees on divergence), the backward
 * pass and the optimizer. */
/* One step; *bad names a non-finite loss or gradient, in which case the
 * optimizer is not stepped. Under --dist the loss is the ranks' sum, so
 * every rank finds it alike; the gradients are checked by the optimizer
 * after their reduction. */
static muon_status train_step(run_state *r, long step, double mult, double *loss,
                              const char **bad)
{
    *bad = NULL;
    gpt_zero_grad(r->model);
    *loss = slice_loss(r);
    muon_status fs = gpt_forward_status(r->model);
    if (fs != MUON_OK) { /* a failed product, not a NaN of the data's */
        *bad = "out of memory in the model's forward products";
        return fs;
    }
    if (r->dist)
        train_par_sum(loss, 1);
    if (!isfinite(*loss)) {
        *bad = "the loss is not finite";
        return MUON_OK;
    }
    muon_status bs = gpt_backward(r->model);
    if (bs != MUON_OK) {
        *bad = "out of memory in the model's backward products";
        return bs;
    }
    scale_grads(r);
    if (!r->dist) {
        poison_if_asked(r, step);
        if (!grads_finite(r->model)) {
            *bad = "a gradient is not finite";
            return MUON_OK;
        }
    }
    return r->dist ? train_par_opt_step(r->popt, mult) : muon_opt_step(r->opt, mult);
}

int train_run(const train_config *cfg, const char *resume, train_result *res, char *err,
              size_t errcap)
{
    run_state r;
    memset(&r, 0, sizeof r);
    r.cfg = *cfg;
    if (res)
        memset(res, 0, sizeof *res);
    if (train_config_validate(&r.cfg, err, errcap))
        return 2;
    int rc = dist_begin(&r, err, errcap);
    if (rc)
        return rc;
    int threads = r.cfg.threads > 0 ? r.cfg.threads : omp_get_num_procs();
    omp_set_num_threads(threads);
    muon_set_blas_threads(threads);
    rc = setup(&r, resume, err, errcap);
    if (rc) { /* the ranks have agreed on it already */
        teardown(&r);
        return rc;
    }
    const train_config *c = &r.cfg;
    /* only rank 0 writes files */
    if (r.rank == 0 &&
        (make_dir(c->out_dir, err, errcap) ||
         metrics_open(&r.log, c->out_dir, r.start_step, err, errcap)))
        rc = 1;
    if (r.dist)
        train_par_watchdog_start(c->dist_timeout);
    if ((rc = dist_agree(&r, rc, err, errcap))) {
        train_par_watchdog_stop();
        metrics_close(&r.log);
        teardown(&r);
        return rc;
    }
    muon_schedule sched = muon_schedule_default();
    sched.kind = c->schedule;
    sched.total_steps = c->steps;
    sched.warmup_steps = c->warmup;
    sched.min_ratio = c->min_lr_ratio;
    sched.decay_shape = c->decay_shape;
    long end = c->stop_at > 0 ? c->stop_at : c->steps;
    progress_meter pm;
    progress_begin(&pm, c->progress, c->label, r.start_step, end, c->steps);
    double t_begin = now_s() - r.wall_offset, train_time = 0, last_val = NAN;
    double t_last_save = now_s();
    double last_loss = NAN;
    long train_tokens = 0;
    const long tokens_per_step = (long)c->batch * c->model.context;
    for (long step = r.start_step + 1; step <= end; step++) {
        double mult = muon_schedule_multiplier(&sched, step - 1);
        double t0 = now_s(), loss;
        if (r.dist)
            train_par_heartbeat();
        data_loader_next(&r.loader, r.inputs, r.targets);
        const char *bad;
        muon_status s = train_step(&r, step, mult, &loss, &bad);
        double dt = now_s() - t0;
        if (s == MUON_ERR_IO && r.dist) {
            /* a collective failed: the group cannot go on */
            fprintf(stderr, "muon train: rank %d: %s\n", r.rank, train_par_opt_error(r.popt));
            train_par_abort(1);
        }
        /* a refused step leaves parameters and optimizer state as they were;
         * every rank sees the same summed loss, so they refuse together */
        int skip = bad && s == MUON_OK && !c->nonfinite_abort && r.log.skips < c->max_skips;
        if ((bad && s != MUON_OK) || s == MUON_ERR_NOMEM) {
            /* memory ran out in the model's or the optimizer's products: an
             * error of the machine, not a divergence of the run */
            snprintf(err, errcap, "step %ld: %s", step,
                     bad      ? bad
                     : r.dist ? train_par_opt_error(r.popt)
                              : muon_opt_error(r.opt));
            if (r.dist) { /* the other ranks are inside a collective */
                fprintf(stderr, "muon train: rank %d: %s\n", r.rank, err);
                train_par_abort(1);
            }
            rc = 1;
            break;
        }
        if ((bad && !skip) || s != MUON_OK) {
            snprintf(err, errcap, "training diverged at step %ld: %s%s", step,
                     bad      ? bad
                     : r.dist ? train_par_opt_error(r.popt)
                              : muon_opt_error(r.opt),
                     bad && !c->nonfinite_abort ? " (after --max-skips skipped steps)" : "");
            if (res)
                res->diverged = 1;
            rc = 1;
            break;
        }
        if (skip) {
            r.log.skips++;
            if (res)
                res->skipped = r.log.skips;
        } else {
            if (step > r.start_step + 1 || end == r.start_step + 1) {
                train_time += dt;
                train_tokens += tokens_per_step;
            }
            last_loss = loss;
        }
        double val = NAN;
        if (step % c->eval_every == 0 || step == c->steps || step == end) {
            if (r.dist)
                train_par_heartbeat();
            muon_status es;
            val = evaluate(&r, &es);
            last_val = val;
            if (es != MUON_OK) {
                snprintf(err, errcap, "step %ld: out of memory in the model's products during "
                         "evaluation", step);
                if (r.dist) {
                    fprintf(stderr, "muon train: rank %d: %s\n", r.rank, err);
                    train_par_abort(1);
                }
                rc = 1;
                break;
            }
            if (record_eval(res, step, val, now_s() - t_begin)) {
                snprintf(err, errcap, "out of memory recording the evaluation of step %ld", step);
                rc = 1;
                break;
            }
        }
        double lr_now = c->lr * mult;
        metrics_comm mc = {0, 0, 0};
        if (r.dist) {
            double comm_s;
            train_par_opt_stats(r.popt, &mc.opt_state_bytes, &mc.comm_bytes, &comm_s);
            mc.comm_ms = comm_s * 1e3;
        }
        if (skip)
            metrics_write_skipped(&r.log, step, loss, lr_now, val);
        else
            metrics_write(&r.log, step, loss, lr_now, (double)tokens_per_step / dt, val,
                          r.dist ? &mc : NULL);
        /* the ETA divides by the steps of this process, so its time only */
        progress_update(&pm, step, skip ? last_loss : loss, val, (double)tokens_per_step / dt,
                        now_s() - t_begin - r.wall_offset);
        if (stop_signal && !r.dist) {
            end = step;
            rc = TRAIN_STOPPED;
            break;
        }
        if (step < end && periodic_due(&r, step, now_s() - t_last_save)) {
            if (save_periodic(&r, step, now_s() - t_begin, err, errcap)) {
                rc = 1;
                break;
            }
            t_last_save = now_s();
        }
    }
    progress_end(&pm);
    metrics_close(&r.log);
    double wall = now_s() - t_begin;
    if (r.dist)
        train_par_heartbeat();
    if ((rc == 0 || rc == TRAIN_STOPPED) && save_checkpoint(&r, NULL, end, wall, err, errcap))
        rc = 1;
    rc = dist_agree(&r, rc, err, errcap);
    if (r.dist)
        train_par_watchdog_stop();
    if (rc == TRAIN_STOPPED)
        snprintf(err, errcap, "stopped by signal %d after step %ld; wrote %s/checkpoint.bin "
                 "(continue with --resume)", (int)stop_signal, end, c->out_dir);
    /* the checkpoint and metrics are written: a missing plot is a warning */
    char perr[512];
    int plotted = rc == 0 && r.rank == 0 && metrics_plot(c->out_dir, perr, sizeof perr) == 0;
    if (rc == 0 && r.rank == 0 && !plotted)
        fprintf(stderr, "warning: %s/loss.svg not written: %s\n", c->out_dir, perr);
    if (res) {
        res->steps_done = end;
        res->plot_written = plotted;
        res->final_train_loss = last_loss;
        res->final_val_loss = rc == 0 ? last_val : INFINITY;
        res->tokens_per_s = train_time > 0 ? (double)train_tokens / train_time : 0;
        res->wall_s = wall;
        res->n_params = gpt_num_params(r.model);
        res->param_bytes = res->grad_bytes = res->n_params * sizeof(float);
        if (r.dist) {
            size_t cb;
            double cs;
            train_par_opt_stats(r.popt, &res->opt_state_bytes, &cb, &cs);
        } else
            res->opt_state_bytes = muon_opt_state_bytes(r.opt);
        res->act_bytes = gpt_activation_bytes(r.model);
    }
    teardown(&r);
    return rc;
}

void train_result_free(train_result *r)
{
    free(r->eval_step);
    free(r->eval_loss);
    free(r->eval_wall);
    memset(r, 0, sizeof *r);
}
