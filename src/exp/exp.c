/* The experiment framework: the registry, the output directory, and the
 * results.json / README.md every experiment writes (exp.h). */
#include "exp/exp.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <omp.h>

const exp_def exp_table[] = {
    {"ns-steps", "NS residual per step and coefficient set (taylor-K: delta_q <= delta_0^((K+1)^q)); "
                 "loss with 1..5 steps vs the exact polar factor", 3, exp_ns_steps},
    {"mf", "matrix factorization: Muon's iterations flat in the condition number, GD's growing",
     1, exp_mf},
    {"lsq", "Fanions least squares: iterations to 1e-3, Muon 1060, F-Muon 910, S-Muon 890, "
            "normalized SGD 1020, signSGD 2650", 1, exp_lsq},
    {"rank", "Muon's advantage over SGD with momentum grows with the gradient's rank "
             "(square root of the rank)", 1, exp_rank},
    {"rms", "moonlight scale: update RMS 0.2 on every shape; weight RMS grows without weight "
            "decay, stays bounded with it", 3, exp_rms},
    {"switch", "Xmodel-2.5: AdamW switched to Muon at the decay phase beats AdamW throughout", 3,
     exp_switch},
    {"batch", "critical batch size: steps K(B) and B K(B) to a target loss", 3, exp_batch},
    {"mup", "spectral scale: the best lr moves less with width than under moonlight", 3, exp_mup},
    {"memory", "SCALE matches Adam with 35-45% of its memory", 3, exp_memory},
    {"shape", "spectrum shaping s -> s^p: p = 0 (Muon) vs flatter and gradient-like maps", 3,
     exp_shape},
    {"efficiency", "Moonlight: Muon reaches AdamW's loss with about half the compute", 3,
     exp_efficiency},
};
const int exp_count = (int)(sizeof exp_table / sizeof exp_table[0]);

const exp_def *exp_find(const char *name)
{
    for (int i = 0; i < exp_count; i++)
        if (!strcmp(exp_table[i].name, name))
            return &exp_table[i];
    return NULL;
}

int exp_fail(exp_ctx *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(x->err, sizeof x->err, fmt, ap);
    va_end(ap);
    return 1;
}

void exp_md(exp_ctx *x, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int need = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (need < 0)
        return;
    if (x->md_len + (size_t)need + 1 > x->md_cap) {
        size_t cap = (x->md_cap ? 2 * x->md_cap : 4096) + (size_t)need;
        char *p = realloc(x->md, cap);
        if (!p)
            return;
        x->md = p;
        x->md_cap = cap;
    }
    va_start(ap, fmt);
    vsnprintf(x->md + x->md_len, x->md_cap - x->md_len, fmt, ap);
    va_end(ap);
    x->md_len += (size_t)need;
}

double exp_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

void exp_mean_std(const double *v, int n, double *mean, double *std)
{
    double s = 0, ss = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    double m = n > 0 ? s / n : NAN;
    for (int i = 0; i < n; i++)
        ss += (v[i] - m) * (v[i] - m);
    *mean = isfinite(m) ? m : INFINITY;
    *std = n > 1 && isfinite(m) ? sqrt(ss / (n - 1)) : (isfinite(m) ? 0 : INFINITY);
}

cJSON *exp_json_array(const double *v, int n)
{
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < n; i++)
        cJSON_AddItemToArray(a, isfinite(v[i]) ? cJSON_CreateNumber(v[i]) : cJSON_CreateNull());
    return a;
}

int exp_plot(exp_ctx *x, const char *file, const char *caption, const plot_panel *panels,
             int n_panels)
{
    char path[TRAIN_PATH_MAX + 64], err[256];
    snprintf(path, sizeof path, "%s/%s", x->out_dir, file);
    if (plot_write_svg(path, panels, n_panels, err, sizeof err))
        return exp_fail(x, "%s", err);
    exp_md(x, "\n![%s](%s)\n\n", caption, file);
    return 0;
}

static int make_dirs(const char *path)
{
    char buf[TRAIN_PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0777) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    return stat(buf, &st) == 0 && S_ISDIR(st.st_mode) ? 0 : -1;
}

/* "AMD EPYC ... (N cores)" from /proc/cpuinfo. */
static void machine_line(char *out, size_t cap)
{
    char model[160] = "unknown CPU";
    FILE *f = fopen("/proc/cpuinfo", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "model name", 10)) {
            char *c = strchr(line, ':');
            if (c) {
                c += 2;
                c[strcspn(c, "\n")] = 0;
                snprintf(model, sizeof model, "%s", c);
            }
            break;
        }
    }
    if (f)
        fclose(f);
    snprintf(out, cap, "%s, %d cores", model, omp_get_num_procs());
}

static int write_text(exp_ctx *x, const char *name, const char *text)
{
    char path[TRAIN_PATH_MAX + 64], tmp[TRAIN_PATH_MAX + 80];
    snprintf(path, sizeof path, "%s/%s", x->out_dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return exp_fail(x, "cannot write %s: %s", tmp, strerror(errno));
    int bad = fputs(text, f) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0)
        return exp_fail(x, "cannot write %s", path);
    return 0;
}

int exp_run(const exp_def *d, exp_ctx *x)
{
    if (make_dirs(x->out_dir))
        return exp_fail(x, "cannot create output directory %s: %s", x->out_dir,
                        strerror(errno));
    x->root = cJSON_CreateObject();
    double t0 = exp_now();
    int threads = x->threads > 0 ? x->threads : omp_get_num_procs();
    omp_set_num_threads(threads);
    muon_set_blas_threads(threads);
    int rc = d->run(x);
    double wall = exp_now() - t0;
    char machine[256], date[64];
    machine_line(machine, sizeof machine);
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", gmtime(&now));
    if (rc == 0) {
        cJSON_AddStringToObject(x->root, "experiment", d->name);
        cJSON_AddStringToObject(x->root, "claim", d->claim);
        cJSON_AddStringToObject(x->root, "command", x->command);
        cJSON_AddNumberToObject(x->root, "seeds", x->seeds);
        cJSON_AddBoolToObject(x->root, "quick", x->quick);
        cJSON_AddStringToObject(x->root, "machine", machine);
        cJSON_AddNumberToObject(x->root, "threads", threads);
        cJSON_AddStringToObject(x->root, "date", date);
        cJSON_AddNumberToObject(x->root, "wall_s", wall);
        char *json = cJSON_Print(x->root);
        rc = json ? write_text(x, "results.json", json) : exp_fail(x, "out of memory");
        free(json);
    }
    if (rc == 0) {
        size_t cap = x->md_len + 4096;
        char *md = malloc(cap);
        if (!md)
            rc = exp_fail(x, "out of memory");
        else {
            snprintf(md, cap,
                     "# muon exp %s%s\n\nClaim: %s\n\nCommand: `%s`\n\nSeeds: %d. Machine: %s "
                     "(%d threads). %s, %.0f s.\n\n%s",
                     d->name, x->quick ? " (quick)" : "", d->claim, x->command, x->seeds, machine,
                     threads, date, wall, x->md ? x->md : "");
            rc = write_text(x, "README.md", md);
            free(md);
        }
    }
    cJSON_Delete(x->root);
    x->root = NULL;
    free(x->md);
    x->md = NULL;
    x->md_len = x->md_cap = 0;
    return rc;
}
