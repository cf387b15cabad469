/* Token data for the trainer: text files and directories, llm.c token
 * shards, the train/validation split, and deterministic, resumable batches.
 * See docs/data.md for the formats and rules.
 *
 *     data_set ds;
 *     if (data_load(path, &tok, DATA_VAL_FRACTION, &ds, err)) { puts(err); ... }
 *     data_loader L;
 *     data_loader_init(&L, ds.train.ids, ds.train.n, B, T, seed, "training data", err);
 *     data_loader_next(&L, inputs, targets);          // B*T int32 each
 *     data_loader_state st; data_loader_state_get(&L, &st);   // save in a checkpoint
 *     data_loader_state_set(&L, &st, err);            // restore: same next batches
 *     data_val val;
 *     data_val_init(&val, ds.val.ids, ds.val.n, B, T, max_batches, "validation data", err);
 *     for (int b = 0; b < val.n_batches; b++) data_val_batch(&val, b, inputs, targets);
 *
 * Functions returning int return a muon_status code (0 == MUON_OK) and on
 * failure write a one-line message naming the file into err (256 bytes) and
 * leave their outputs untouched. */
#ifndef DATA_DATA_H
#define DATA_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "data/tokenizer.h"

#define DATA_ERR_LEN 256
#define DATA_VAL_FRACTION 0.1 /* the last 10% of a stream is validation */

/* ---- text ---- */

/* Read PATH as bytes. A file is read whole (empty -> MUON_ERR_FORMAT "data
 * file X is empty"). A directory gives its regular text files in sorted name
 * order, concatenated, a newline added after a file that does not end in one;
 * hidden names, *.dat, *.u8, *.bin, subdirectories and files containing a NUL
 * byte are skipped (the fortunes package's layout). *bytes is malloc'd and
 * NUL-terminated; *n_files (may be NULL) counts the files used. */
int data_read_text(const char *path, char **bytes, size_t *len, int *n_files, char *err);

/* ---- llm.c token shards ---- */

#define DATA_SHARD_MAGIC 20240520
#define DATA_SHARD_VERSION 1
#define DATA_SHARD_HEADER_INTS 256

/* Header of 256 little-endian int32 (magic, version, token count, zeros),
 * then the tokens as little-endian uint16. Written to a temporary name and
 * renamed. Ids outside [0, 65535] or n > INT32_MAX -> MUON_ERR_ARG. */
int data_shard_write(const char *path, const int32_t *ids, size_t n, char *err);
/* Read a shard into malloc'd *ids. Short file, bad magic, bad version, or a
 * token count that does not match the file size exactly -> an error. */
int data_shard_read(const char *path, int32_t **ids, size_t *n, char *err);

/* ---- a loaded data set ---- */

typedef struct {
    int32_t *ids;
    size_t n;
} data_tokens;

typedef struct {
    data_tokens train, val;
    int from_shards;            /* 1: llm.c shards, 0: text */
    int val_is_separate;        /* 1: val came from its own shard(s), 0: split */
    char desc[DATA_ERR_LEN];    /* one line for the log, e.g. "text file X: ..." */
} data_set;

/* Split n tokens: the first n - floor(n * val_fraction) are training, the
 * rest validation (0 <= val_fraction < 1). Returns the training count. */
size_t data_split_point(size_t n, double val_fraction);

/* Load PATH, whatever it is:
 *  - a directory holding *.bin files: llm.c shards in sorted name order;
 *    names containing "_val" are validation, the rest training; without a
 *    validation shard the training stream is split by val_fraction;
 *  - a file named *.bin: one shard; if its name contains "_train" and the
 *    same name with "_val" in its place exists, that file is validation,
 *    else the shard is split;
 *  - any other file or directory: text (data_read_text), encoded with tok
 *    (special tokens not interpreted), then split.
 * Shard ids must be < tok->vocab_size. Free with data_set_free. */
int data_load(const char *path, const tok_tokenizer *tok, double val_fraction, data_set *out,
              char *err);
/* As llm.c takes them, PATH may also be a glob of shards, e.g.
 * "dir/fineweb_train_*.bin": the matches in sorted order, those whose
 * name contains "_val" as validation; where the pattern's file name holds
 * "_train", the same pattern with "_val" in its place selects validation
 * shards too. A pattern that matches nothing, or a file that is not a .bin
 * shard, is an error. */

/* 1 when PATH names llm.c shards: a glob, a *.bin file, or a directory
 * holding *.bin files. */
int data_path_is_shards(const char *path);
void data_set_free(data_set *ds);

/* ---- training batches ---- */

/* Everything needed to continue the exact batch sequence: plain integers, so
 * a checkpoint stores it as 6 little-endian uint64. */
typedef struct {
    uint64_t seed;      /* the run's data seed */
    uint64_t epoch;     /* epochs completed */
    uint64_t pos;       /* next index into this epoch's window order */
    uint64_t n_windows; /* for checking a restore against the data */
    uint64_t B, T;
} data_loader_state;

typedef struct {
    const int32_t *tokens; /* not owned */
    size_t n;
    int B, T;
    data_loader_state st;
    uint64_t *order; /* this epoch's window order (a seeded shuffle) */
} data_loader;

/* The stream is cut into n_windows = (n - 1) / T windows; window w is tokens
 * [w*T, w*T + T] (inputs the first T, targets the last T). Each epoch visits
 * every window once, in an order shuffled by (seed, epoch); a batch is the
 * next B windows, running into the next epoch when this one ends. n < T + 1
 * -> MUON_ERR_SIZE "NAME has N tokens; need at least T+1 = ... for context
 * T"; B < 1 or T < 1 -> MUON_ERR_ARG. name labels the stream in messages. */
int data_loader_init(data_loader *L, const int32_t *tokens, size_t n, int B, int T,
                     uint64_t seed, const char *name, char *err);
/* Fill inputs and targets (B*T each, row-major) with the next batch. */
int data_loader_next(data_loader *L, int32_t *inputs, int32_t *targets);
void data_loader_state_get(const data_loader *L, data_loader_state *st);
/* Continue from st (taken from a loader over the same data with the same B,
 * T; anything else -> MUON_ERR_MISMATCH with the reason). */
int data_loader_state_set(data_loader *L, const data_loader_state *st, char *err);
void data_loader_free(data_loader *L);

/* ---- validation batches ---- */

/* A fixed set of n_batches = clamp(n_windows / B, 1, max_batches) batches:
 * row k of all n_batches*B rows is window floor(k * n_windows / rows), so the
 * windows are spread evenly over the whole stream and the same for every run
 * and optimizer (repeated only if there are fewer than B windows). */
typedef struct {
    const int32_t *tokens; /* not owned */
    size_t n, n_windows;
    int B, T, n_batches;
} data_val;

int data_val_init(data_val *v, const int32_t *tokens, size_t n, int B, int T, int max_batches,
                  const char *name, char *err);
/* Batch b (0 <= b < n_batches) into inputs and targets (B*T each). */
int data_val_batch(const data_val *v, int b, int32_t *inputs, int32_t *targets);

#endif
