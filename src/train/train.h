/* The training loop behind `muon train` and `muon compare`: a GPT (src/nn)
 * on tokens (src/data) updated by libmuon, with evaluation, metrics,
 * checkpoints that resume bit-identically, and a loss plot. */
#ifndef MUON_TRAIN_TRAIN_H
#define MUON_TRAIN_TRAIN_H

#include <stddef.h>
#include <stdint.h>

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
    /* data-parallel over MPI (train/par.h); not part of a checkpoint, so a
     * run may resume with another mode or rank count */
    char dist[16];    /* "" one process, else "ddp" | "zero1" | "owner" */
    int dist_overlap; /* 1: communication overlaps computation */
    int dist_bf16;    /* zero1: all-gather the orthogonalization input in bf16 */
    double dist_timeout; /* seconds without progress before a rank gives up; 0: wait */
} train_config;

/* What a run reports: the validation curve and its cost. */
typedef struct {
    long steps_done;
    double final_train_loss, final_val_loss;
    double tokens_per_s; /* training tokens / training time, steps 2.. */
    double wall_s;       /* whole run incl. evaluation */
    size_t n_params, param_bytes, grad_bytes, opt_state_bytes, act_bytes;
    int n_evals;
    long *eval_step;
    double *eval_loss, *eval_wall; /* wall seconds at that eval */
    int diverged;                  /* loss or gradient became NaN/Inf */
} train_result;

/* Defaults of `muon train` (and the per-run settings of `muon compare`). */
train_config train_config_default(void);
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

/* The configuration as JSON text (malloc'd) and back; used by checkpoints
 * and summary files. */
char *train_config_to_json(const train_config *c);
int train_config_from_json(const char *json, size_t len, train_config *c, char *err,
                           size_t errcap);

#endif
