/* Run records: metrics.jsonl (one JSON object per step), the loss plot made
 * from it, and the progress line on the terminal. */
#ifndef MUON_TRAIN_METRICS_H
#define MUON_TRAIN_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "train/train.h"

typedef struct {
    FILE *f;
    long skips; /* steps refused so far; written as "skipped_steps" once > 0 */
} metrics_log;

/* Open DIR/metrics.jsonl for this run. keep_upto > 0 (a resumed run) keeps
 * the lines of steps <= keep_upto and appends after them, so a run stopped
 * after its checkpoint never leaves duplicate steps; 0 starts a new file. */
int metrics_open(metrics_log *m, const char *dir, long keep_upto, char *err, size_t errcap);
/* What a --dist rank holds and sends in a step (train/par.h). */
typedef struct {
    size_t opt_state_bytes; /* optimizer state on this rank */
    size_t comm_bytes;      /* sent by this rank */
    double comm_ms;         /* inside MPI calls */
} metrics_comm;

/* {"step":..,"train_loss":..,"lr":..,"tokens_per_s":..[,"val_loss":..]
 * [,"opt_state_bytes":..,"comm_bytes":..,"comm_ms":..]}; val_loss is
 * written when finite, the rest when comm is not NULL. Flushed, so a crash
 * keeps every step. */
void metrics_write(metrics_log *m, long step, double train_loss, double lr, double tokens_per_s,
                   double val_loss, const metrics_comm *comm);
/* A step refused for a non-finite loss or gradient: {"step":..,"skipped":
 * true,"train_loss":.. or null,"lr":..,"skipped_steps":..[,"val_loss":..]}. */
void metrics_write_skipped(metrics_log *m, long step, double train_loss, double lr,
                           double val_loss);
void metrics_close(metrics_log *m);
/* DIR/loss.svg: training and validation loss against step, from
 * DIR/metrics.jsonl. 0, or -1 with a message. */
int metrics_plot(const char *dir, char *err, size_t errcap);

typedef struct {
    train_progress mode; /* resolved: LINES or QUIET, or AUTO meaning a terminal */
    const char *label;
    long start, end, total;
    double t_start;
    long every;
    int on_tty;
} progress_meter;

void progress_begin(progress_meter *p, train_progress mode, const char *label, long start,
                    long end, long total);
void progress_update(progress_meter *p, long step, double loss, double val_loss,
                     double tokens_per_s, double elapsed_s);
void progress_end(progress_meter *p);

#endif
