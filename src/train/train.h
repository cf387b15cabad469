/* The training loop behind `muon train` and `muon compare`: a GPT (src/nn)
 * on tokens (src/data) updated by libmuon, with evaluation, metrics,
 * checkpoints that resume bit-identically, and a loss plot. */
#ifndef MUON_TRAIN_TRAIN_H
#define MUON_TRAIN_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "data/data.h"
#include "data/tokenizer.h"
#include "muon.h"
#include "nn/gpt.h"

#define TRAIN_PATH_MAX 1024
#define TRAIN_ERR_LEN 512
/* The best rates of `muon compare`'s sweep at the default model on
 * tinyshakespeare (400 steps): AdamW 4e-3, the Muon hybrid 1.6e-2. */
#define TRAIN_DEFAULT_ADAMW_LR 4e-3
#define TRAIN_DEFAULT_MUON_LR 1.6e-2

typedef enum { TRAIN_PROGRESS_AUTO = 0, TRAIN_PROGRESS_LINES, TRAIN_PROGRESS_QUIET } train_progress;

typedef struct {
    char data[TRAIN_PATH_MAX];    /* text file, directory or token shards */
    char out_dir[TRAIN_PATH_MAX]; /* metrics.jsonl, checkpoint.bin, loss.svg */
    tok_kind tokenizer;
    char bpe_dir[TRAIN_PATH_MAX]; /* encoder.json + vocab.bpe for TOK_GPT2 */
    gpt_config model;             /* vocab is set from the tokenizer */
    int batch;
    muon_algo optim;
    double lr;                 /* Muon group (or every param for AdamW runs) */
    double adam_lr;            /* AdamW group of the hybrid */
    double weight_decay;       /* both groups */
    double momentum;           /* Muon */
    double adam_beta1, adam_beta2;
    muon_ortho_config ortho;
    muon_schedule_kind schedule;
    long warmup;
    double min_lr_ratio;
    long steps;      /* the run's total: schedules span it */
    long stop_at;    /* end after this step with a checkpoint; 0 = run to steps */
    long eval_every; /* validation loss every N steps (and at the last step) */
    int eval_batches;
    uint64_t seed; /* initialisation and data order */
    int threads;
    train_progress progress;
    char label[64]; /* prefix for progress lines (compare uses "muon lr=...") */
    /* Protection of a long run (docs/reliability.md); not stored in the
     * checkpoint: a resumed run takes them from its command line. */
    long checkpoint_every;     /* steps between periodic checkpoints; 0: by time only */
    double checkpoint_minutes; /* wall minutes between them; 0: by steps only */
    int keep_checkpoints;      /* periodic checkpoints kept (the newest) */
    int nonfinite_abort;       /* 1: a NaN/Inf loss or gradient ends the run */
    long max_skips;            /* skipped steps allowed before the run ends */
    long nan_at[8];            /* test aid: poison the gradient at these steps */
    int n_nan_at;
    /* the optimizer family's options (docs/algorithms.md); weight_decay
     * above is the Muon group's (every param's for adamw and sgdm) */
    double adam_weight_decay; /* the AdamW group's */
    muon_scale_rule scale;
    int nesterov;
    double spectrum_power, fanion_alpha, sign_scale;
    int fanion_k;
    muon_decay_shape decay_shape; /* of wsd; adamw-muon switches where it starts */
    /* data-parallel over MPI (train/par.h); not part of a checkpoint, so a
     * run may resume with another mode or rank count */
    char dist[16];    /* "" one process, else "ddp" | "zero1" | "owner" */
    int dist_overlap; /* 1: communication overlaps computation */
    int dist_bf16;    /* zero1: all-gather the orthogonalization input in bf16 */
    double dist_timeout; /* seconds without progress before a rank gives up; 0: wait */
} train_config;

/* Exit status of a run stopped by SIGINT/SIGTERM after writing its checkpoint. */
#define TRAIN_STOPPED 3

/* Ask the running train_run to stop after the current step, write its
 * checkpoint and return TRAIN_STOPPED. Async-signal-safe. */
void train_request_stop(int sig);

/* What a run reports: the validation curve and its cost. */
typedef struct {
    long steps_done;
    double final_train_loss, final_val_loss;
    double tokens_per_s; /* training tokens / training time, steps 2.. */
    double wall_s;       /* whole run incl. evaluation */
    size_t n_params, param_bytes, grad_bytes, opt_state_bytes, act_bytes;
    int plot_written; /* 0: loss.svg could not be written (a warning was printed) */
    int n_evals;
    long *eval_step;
    double *eval_loss, *eval_wall; /* wall seconds at that eval */
    int diverged;                  /* loss or gradient became NaN/Inf */
    long skipped;                  /* steps refused for a NaN/Inf loss or gradient */
} train_result;

/* Defaults of `muon train` (and the per-run settings of `muon compare`). */
train_config train_config_default(void);
/* The default peak learning rate of an algorithm (train/family.c). */
double train_default_lr(muon_algo a);
/* The library's optimizer configuration for a training configuration. */
muon_opt_config train_opt_config(const train_config *c);
/* Check every field; 0, or -1 with a message naming the flag. */
int train_config_validate(const train_config *c, char *err, size_t errcap);

/* Run (or, with resume != NULL, continue from a checkpoint file) until
 * c->steps or c->stop_at. Returns 0, 1 on a runtime error (message in err;
 * files already in out_dir are left intact), or 2 on a configuration error.
 * res may be NULL; free it with train_result_free. */
int train_run(const train_config *c, const char *resume, train_result *res, char *err,
              size_t errcap);
void train_result_free(train_result *r);

/* ---- checkpoints (train/checkpoint.c) ---- */

/* A checkpoint's contents: the configuration it was trained with, the model
 * with its parameters, and (for resuming) the optimizer and data state. */
typedef struct {
    train_config cfg;
    long step;            /* completed steps */
    double wall_s;        /* wall time spent so far */
    uint32_t data_crc;    /* CRC-32 of the training tokens */
    uint64_t data_state[6];
    float *params;        /* gpt_num_params floats (malloc'd) */
    size_t n_params;
    void *opt_state;      /* muon_opt_save_buffer blob (malloc'd) */
    size_t opt_state_len;
} train_ckpt;

int train_ckpt_save(const char *path, const train_ckpt *ck, char *err, size_t errcap);
/* Loads and validates (format, checksum, sizes against the stored model). */
int train_ckpt_load(const char *path, train_ckpt *ck, char *err, size_t errcap);
void train_ckpt_free(train_ckpt *ck);

/* ---- periodic checkpoints (train/autosave.c) ---- */

/* DIR/checkpoint-STEP.bin (STEP zero-padded to 9 digits); -1 if too long. */
int train_periodic_path(char *buf, size_t cap, const char *dir, long step);
/* Remove all but the newest `keep` periodic checkpoints of DIR. */
int train_prune_checkpoints(const char *dir, int keep, char *err, size_t errcap);
/* The checkpoint of DIR (checkpoint.bin or a periodic one) with the highest
 * step among those that load: 0 with *path and *step, 1 when there is none,
 * -1 when DIR cannot be listed. */
int train_find_latest(const char *dir, char *path, size_t cap, long *step, char *err,
                      size_t errcap);

/* The configuration as JSON text (malloc'd) and back; used by checkpoints
 * and summary files. */
char *train_config_to_json(const train_config *c);
int train_config_from_json(const char *json, size_t len, train_config *c, char *err,
                           size_t errcap);

#endif
