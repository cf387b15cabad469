/* Helpers shared by the `muon bench` sub-benchmarks (see bench.h). */
#ifndef _POSIX_C_SOURCE /* clock_gettime, getrusage: POSIX, whatever the build defines */
#define _POSIX_C_SOURCE 200809L
#endif
#include "cli/bench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <omp.h>

double bench_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

static uint64_t splitmix(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

#define FILL_CHUNK ((size_t)1 << 16) /* even, so Box-Muller pairs never straddle chunks */

void bench_fill_normal(float *x, size_t n, uint64_t seed, double scale)
{
    const long chunks = (long)((n + FILL_CHUNK - 1) / FILL_CHUNK);
#pragma omp parallel for schedule(static)
    for (long c = 0; c < chunks; c++) {
        uint64_t s = seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(c + 1));
        size_t lo = (size_t)c * FILL_CHUNK, hi = lo + FILL_CHUNK < n ? lo + FILL_CHUNK : n;
        for (size_t i = lo; i < hi; i += 2) {
            /* u1 in (0, 1] so the log is finite */
            double u1 = (double)((splitmix(&s) >> 11) + 1) * (1.0 / 9007199254740992.0);
            double u2 = (double)(splitmix(&s) >> 11) * (1.0 / 9007199254740992.0);
            double r = scale * sqrt(-2.0 * log(u1));
            x[i] = (float)(r * cos(6.283185307179586 * u2));
            if (i + 1 < hi)
                x[i + 1] = (float)(r * sin(6.283185307179586 * u2));
        }
    }
}

void bench_fill_uniform(float *x, size_t n, uint64_t seed, double scale)
{
    const long chunks = (long)((n + FILL_CHUNK - 1) / FILL_CHUNK);
    const double a = 2.0 * 1.7320508075688772 * scale / 4294967296.0; /* sqrt(3): std 1 */
    const double b = 1.7320508075688772 * scale;
#pragma omp parallel for schedule(static)
    for (long c = 0; c < chunks; c++) {
        uint64_t s = seed ^ (0xD1B54A32D192ED03ull * (uint64_t)(c + 1));
        size_t lo = (size_t)c * FILL_CHUNK, hi = lo + FILL_CHUNK < n ? lo + FILL_CHUNK : n;
        for (size_t i = lo; i < hi; i += 2) {
            uint64_t z = splitmix(&s); /* two 32-bit draws */
            x[i] = (float)(a * (double)(uint32_t)z - b);
            if (i + 1 < hi)
                x[i + 1] = (float)(a * (double)(uint32_t)(z >> 32) - b);
        }
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *t, int n)
{
    qsort(t, (size_t)n, sizeof(double), cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

int bench_time(const char *prog, bench_fn fn, void *ctx, int warmup, int repeats, double *ms)
{
    double *t = malloc(sizeof(double) * (size_t)(repeats > 0 ? repeats : 1));
    if (!t) {
        fprintf(stderr, "%s: out of memory\n", prog);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < warmup && !rc; i++)
        rc = fn(ctx);
    for (int i = 0; i < repeats && !rc; i++) {
        double t0 = bench_now_ms();
        rc = fn(ctx);
        t[i] = bench_now_ms() - t0;
    }
    if (!rc)
        *ms = bench_median(t, repeats);
    free(t);
    return rc;
}

int bench_long_list(cli_args *a, const char *flag, long min, long max, const long *def,
                    int n_def, long **out, int *n)
{
    const char **txt = NULL;
    int ntxt = 0;
    *out = NULL;
    *n = 0;
    if (cli_get_list(a, flag, &txt, &ntxt)) {
        fprintf(stderr, "%s: out of memory\n", a->prog);
        return 1;
    }
    int count = ntxt ? ntxt : n_def;
    long *v = malloc(sizeof(long) * (size_t)(count > 0 ? count : 1));
    if (!v) {
        fprintf(stderr, "%s: out of memory\n", a->prog);
        return 1;
    }
    for (int i = 0; i < count; i++) {
        if (!ntxt) {
            v[i] = def[i];
        } else if (cli_parse_long(a, flag, txt[i], min, max, &v[i])) {
            free(v);
            return 2;
        }
    }
    *out = v;
    *n = count;
    return 0;
}

int bench_thread_list(cli_args *a, int **threads, int *n)
{
    long def = muon_get_blas_threads(), *v;
    int rc = bench_long_list(a, "threads", 1, 1024, &def, 1, &v, n);
    if (rc)
        return rc;
    int *t = malloc(sizeof(int) * (size_t)*n);
    if (!t) {
        free(v);
        fprintf(stderr, "%s: out of memory\n", a->prog);
        return 1;
    }
    for (int i = 0; i < *n; i++)
        t[i] = (int)v[i];
    free(v);
    *threads = t;
    return 0;
}

int bench_parse_shape(const cli_args *a, const char *flag, const char *text, long *rows,
                      long *cols)
{
    char *end;
    long r = strtol(text, &end, 10), c = 0;
    int ok = end != text && (*end == 'x' || *end == 'X') && text[0] >= '0' && text[0] <= '9';
    if (ok) {
        const char *p = end + 1;
        c = strtol(p, &end, 10);
        ok = end != p && *end == 0 && p[0] >= '0' && p[0] <= '9';
    }
    if (!ok || r < 1 || c < 1 || r > (1L << 20) || c > (1L << 20) || r * c > (1L << 31))
        return cli_usage_error(a, "--%s must be ROWSxCOLS with sizes >= 1 (e.g. 1024x4096)"
                                  ", got '%s'",
                               flag, text);
    *rows = r;
    *cols = c;
    return 0;
}

void bench_set_threads(int n)
{
    muon_set_blas_threads(n);
    omp_set_num_threads(n);
}

/* VmHWM of /proc/self/status is the peak of this program image alone.
 * getrusage's ru_maxrss is not: Linux carries the parent's peak across fork
 * and exec, so a bench started from a large process (Python with torch
 * loaded: 228 MiB) reported that process's memory as its own. */
size_t bench_peak_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    if (f)
        fclose(f);
    if (kib >= 0)
        return (size_t)kib * 1024;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0 || ru.ru_maxrss < 0)
        return 0;
    return (size_t)ru.ru_maxrss * 1024; /* Linux reports KiB */
}

int bench_emit_json(cJSON *o)
{
    char *text = o ? cJSON_PrintUnformatted(o) : NULL;
    int rc = 0;
    if (text)
        printf("%s\n", text);
    else
        rc = 1;
    fflush(stdout);
    if (rc)
        fprintf(stderr, "muon bench: out of memory printing JSON\n");
    free(text);
    cJSON_Delete(o);
    return rc;
}
