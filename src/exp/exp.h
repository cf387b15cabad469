/* `muon exp NAME`: the papers' claims, each one command. An experiment
 * fills a JSON object (results.json), a Markdown body (README.md) and at
 * least one SVG plot in its output directory; the framework (exp.c) adds
 * the command, seeds, machine and wall time. docs/results.md gathers them. */
#ifndef MUON_EXP_EXP_H
#define MUON_EXP_EXP_H

#include <stddef.h>

#include <cJSON.h>

#include "data/data.h"
#include "train/plot.h"
#include "train/train.h"

#define EXP_ERR_LEN 512

typedef struct {
    const char *name;
    char out_dir[TRAIN_PATH_MAX];
    int quick;      /* the < 1 minute version `make test` runs */
    int seeds;      /* seeds of the claims that depend on training noise */
    int threads;    /* 0: every core */
    const char *data; /* text for the GPT experiments; NULL: the built-in corpus */
    char command[1024];
    cJSON *root;    /* results.json: the experiment adds its keys */
    char *md;       /* README.md body */
    size_t md_len, md_cap;
    char err[EXP_ERR_LEN];
} exp_ctx;

typedef struct {
    const char *name;
    const char *claim; /* one line: what the paper says */
    int seeds;         /* default --seeds (1 when noise does not matter) */
    int (*run)(exp_ctx *x); /* 0, or 1 with x->err set */
} exp_def;

/* The experiments, one file each (exp_NAME.c). */
int exp_ns_steps(exp_ctx *x);
int exp_mf(exp_ctx *x);
int exp_lsq(exp_ctx *x);
int exp_rank(exp_ctx *x);
int exp_rms(exp_ctx *x);
int exp_switch(exp_ctx *x);
int exp_batch(exp_ctx *x);
int exp_mup(exp_ctx *x);
int exp_memory(exp_ctx *x);
int exp_shape(exp_ctx *x);
int exp_efficiency(exp_ctx *x);

extern const exp_def exp_table[];
extern const int exp_count;
const exp_def *exp_find(const char *name);

/* Create the directory, run, write results.json and README.md. 0 or 1
 * (message in x->err). */
int exp_run(const exp_def *d, exp_ctx *x);

/* Append to the README body. */
void exp_md(exp_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Write DIR/file from the panels and link it from the README. 0 or 1. */
int exp_plot(exp_ctx *x, const char *file, const char *caption, const plot_panel *panels,
             int n_panels);
/* Set x->err and return 1. */
int exp_fail(exp_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
double exp_now(void);

/* Mean and (sample) standard deviation of n values; non-finite values make
 * both infinite. */
void exp_mean_std(const double *v, int n, double *mean, double *std);
/* A JSON array of n doubles (non-finite as null). */
cJSON *exp_json_array(const double *v, int n);

/* ---- the GPT experiments (gpt_run.c) ---- */

/* Token streams for the GPT experiments: --data PATH with the byte
 * tokenizer, or the built-in corpus (corpus.c). */
typedef struct {
    data_tokens train, val;
    int32_t *owned;
    char desc[256];
} exp_data;
int exp_data_load(exp_ctx *x, exp_data *d);
void exp_data_free(exp_data *d);

/* A deterministic synthetic text of about `bytes` bytes: sentences of
 * invented words with Zipf frequencies and a Markov word order, so a small
 * model has something to learn that needs no download. malloc'd. */
char *exp_corpus(size_t bytes, uint64_t seed, size_t *len);

typedef struct {
    int n;                       /* evaluations */
    long step[256];
    double val[256], weight_rms[256];
    double final_val, final_train, wall_s;
    double step_flops;          /* model 6 N tokens + attention, plus the optimizer's */
    size_t state_bytes, n_params;
    int diverged;
} exp_curve;

/* The GPT experiments' small model: 2 layers, width 64, 2 heads, context
 * 64, batch 16, the wsd schedule; quick shrinks the steps. */
train_config exp_gpt_config(const exp_ctx *x, long steps);
/* Train c on d, evaluating every c->eval_every steps, stopping early once
 * a validation loss is <= stop_below (-INFINITY: never). 0 or 1. */
int exp_gpt_run(exp_ctx *x, const exp_data *d, const train_config *c, double stop_below,
                exp_curve *out);

/* Sets c->lr (and c->adam_lr with tie_adam) to the best of c->lr times
 * 2^-2..2^2 (quick: 2^-1..2^1), extended by up to two factors of 2 while
 * the best is at an edge, after half of c->steps with seed 1, and writes
 * the sweep as a README line. 0 or 1. */
int exp_tune_lr(exp_ctx *x, const exp_data *d, train_config *c, const char *label, int tie_adam);

/* Steps at which the curve first reaches target, interpolated linearly
 * between evaluations; NAN when it never does. */
double exp_steps_to(const exp_curve *c, double target);

/* One configuration over x->seeds seeds (c->seed, c->seed + 1, ...): the
 * final validation losses, their mean and standard deviation, and the mean
 * curve. 0 or 1. */
#define EXP_MAX_SEEDS 32
typedef struct {
    int n;
    double final_val[EXP_MAX_SEEDS], mean, std;
    exp_curve mean_curve; /* val and weight_rms averaged over the seeds */
    int any_diverged;
} exp_seeds;
int exp_gpt_seeds(exp_ctx *x, const exp_data *d, const train_config *c, exp_seeds *out);
/* {"optim", "lr", "final_val_mean", "final_val_std", "final_val": [...],
 * "eval_step", "val_mean", "state_bytes"} */
cJSON *exp_seeds_json(const exp_seeds *s, const train_config *c);
/* nv configurations over the seeds: a table in the README, "variants" in
 * results.json, the mean validation curves in plot_file. 0 or 1. */
int exp_gpt_compare(exp_ctx *x, const exp_data *d, int nv, const char *const *labels,
                    const train_config *cfgs, exp_seeds *out, const char *plot_file);

#endif
