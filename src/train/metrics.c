/* metrics.jsonl, loss.svg and the live progress line. */
#include "train/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cJSON.h>

#include "train/plot.h"

/* Copy the lines of steps <= keep_upto from the old file into a new one and
 * rename it into place: the old file stays whole if anything fails. */
static int keep_prefix(const char *path, long keep_upto, char *err, size_t errcap)
{
    FILE *in = fopen(path, "r");
    if (!in)
        return 0; /* nothing to keep */
    char tmp[TRAIN_PATH_MAX + 64];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *out = fopen(tmp, "w");
    if (!out) {
        fclose(in);
        snprintf(err, errcap, "cannot write %s: %s", tmp, strerror(errno));
        return -1;
    }
    char line[4096];
    while (fgets(line, sizeof line, in)) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "step");
        if (cJSON_IsNumber(s) && s->valuedouble <= (double)keep_upto)
            fputs(line, out);
        cJSON_Delete(o);
    }
    fclose(in);
    if (fclose(out) != 0 || rename(tmp, path) != 0) {
        snprintf(err, errcap, "cannot rewrite %s: %s", path, strerror(errno));
        unlink(tmp);
        return -1;
    }
    return 0;
}

int metrics_open(metrics_log *m, const char *dir, long keep_upto, char *err, size_t errcap)
{
    char path[TRAIN_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    if (keep_upto > 0 && keep_prefix(path, keep_upto, err, errcap))
        return -1;
    m->f = fopen(path, keep_upto > 0 ? "a" : "w");
    if (!m->f) {
        snprintf(err, errcap, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

void metrics_write(metrics_log *m, long step, double train_loss, double lr, double tokens_per_s,
                   double val_loss, const metrics_comm *comm)
{
    if (!m->f)
        return;
    fprintf(m->f, "{\"step\":%ld,\"train_loss\":%.6f,\"lr\":%.6g,\"tokens_per_s\":%.1f", step,
            train_loss, lr, tokens_per_s);
    if (isfinite(val_loss))
        fprintf(m->f, ",\"val_loss\":%.6f", val_loss);
    if (comm)
        fprintf(m->f, ",\"opt_state_bytes\":%zu,\"comm_bytes\":%zu,\"comm_ms\":%.3f",
                comm->opt_state_bytes, comm->comm_bytes, comm->comm_ms);
    if (m->skips > 0)
        fprintf(m->f, ",\"skipped_steps\":%ld", m->skips);
    fprintf(m->f, "}\n");
    fflush(m->f);
}

void metrics_write_skipped(metrics_log *m, long step, double train_loss, double lr,
                           double val_loss)
{
    if (!m->f)
        return;
    fprintf(m->f, "{\"step\":%ld,\"skipped\":true,\"train_loss\":", step);
    if (isfinite(train_loss))
        fprintf(m->f, "%.6f", train_loss);
    else
        fprintf(m->f, "null");
    fprintf(m->f, ",\"lr\":%.6g,\"skipped_steps\":%ld", lr, m->skips);
    if (isfinite(val_loss))
        fprintf(m->f, ",\"val_loss\":%.6f", val_loss);
    fprintf(m->f, "}\n");
    fflush(m->f);
}

void metrics_close(metrics_log *m)
{
    if (m->f)
        fclose(m->f);
    m->f = NULL;
}

int metrics_plot(const char *dir, char *err, size_t errcap)
{
    char path[TRAIN_PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "cannot read %s", path);
        return -1;
    }
    size_t n = 0, nv = 0, cap = 0;
    double *x = NULL, *y = NULL, *vx = NULL, *vy = NULL;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        cJSON *o = cJSON_Parse(line);
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(o, "step"),
                    *l = cJSON_GetObjectItemCaseSensitive(o, "train_loss"),
                    *v = cJSON_GetObjectItemCaseSensitive(o, "val_loss");
        if (cJSON_IsNumber(s) && cJSON_IsNumber(l)) {
            if (n == cap) {
                cap = cap ? 2 * cap : 1024;
                double *nx = realloc(x, cap * sizeof *x), *ny = realloc(y, cap * sizeof *y);
                double *nvx = realloc(vx, cap * sizeof *vx), *nvy = realloc(vy, cap * sizeof *vy);
                x = nx ? nx : x;
                y = ny ? ny : y;
                vx = nvx ? nvx : vx;
                vy = nvy ? nvy : vy;
                if (!nx || !ny || !nvx || !nvy) {
                    cJSON_Delete(o);
                    fclose(f);
                    free(x);
                    free(y);
                    free(vx);
                    free(vy);
                    snprintf(err, errcap, "out of memory reading %s for the plot", path);
                    return -1;
                }
            }
            x[n] = s->valuedouble;
            y[n++] = l->valuedouble;
            if (cJSON_IsNumber(v)) {
                vx[nv] = s->valuedouble;
                vy[nv++] = v->valuedouble;
            }
        }
        cJSON_Delete(o);
    }
    fclose(f);
    plot_series s[2] = {{"train", x, y, (int)n}, {"validation", vx, vy, (int)nv}};
    plot_panel p = {"loss", "step", "cross-entropy (nats)", s, 2};
    snprintf(path, sizeof path, "%s/loss.svg", dir);
    int rc = plot_write_svg(path, &p, 1, err, errcap);
    free(x);
    free(y);
    free(vx);
    free(vy);
    return rc;
}

static void fmt_duration(char *buf, size_t cap, double s)
{
    if (!isfinite(s) || s < 0)
        snprintf(buf, cap, "?");
    else if (s < 60)
        snprintf(buf, cap, "%.0fs", s);
    else if (s < 3600)
        snprintf(buf, cap, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else
        snprintf(buf, cap, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
}

void progress_begin(progress_meter *p, train_progress mode, const char *label, long start,
                    long end, long total)
{
    p->mode = mode;
    p->on_tty = mode == TRAIN_PROGRESS_AUTO && isatty(fileno(stderr));
    p->label = label && *label ? label : NULL;
    p->start = start;
    p->end = end;
    p->total = total;
    long span = end - start;
    p->every = span >= 10 ? span / 10 : 1;
}

void progress_update(progress_meter *p, long step, double loss, double val_loss,
                     double tokens_per_s, double elapsed_s)
{
    if (p->mode == TRAIN_PROGRESS_QUIET)
        return;
    double per_step = elapsed_s / (double)(step - p->start > 0 ? step - p->start : 1);
    char eta[32], val[48] = "";
    fmt_duration(eta, sizeof eta, per_step * (double)(p->end - step));
    if (isfinite(val_loss))
        snprintf(val, sizeof val, " | val %.4f", val_loss);
    const char *lab = p->label ? p->label : "";
    const char *sep = p->label ? " | " : "";
    if (p->on_tty) {
        fprintf(stderr, "\r\033[K%s%sstep %ld/%ld | loss %.4f%s | %.0f tok/s | ETA %s", lab, sep,
                step, p->total, loss, val, tokens_per_s, eta);
        if (isfinite(val_loss))
            fprintf(stderr, "\n");
        fflush(stderr);
    } else if (isfinite(val_loss) || step == p->end || (step - p->start) % p->every == 0) {
        fprintf(stderr, "%s%sstep %ld/%ld | loss %.4f%s | %.0f tok/s | ETA %s\n", lab, sep, step,
                p->total, loss, val, tokens_per_s, eta);
    }
}

void progress_end(progress_meter *p)
{
    if (p->on_tty && p->mode != TRAIN_PROGRESS_QUIET)
        fprintf(stderr, "\n");
}
