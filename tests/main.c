/* The one test runner. Usage: test_runner [substring ...] runs the cases whose
 * name or file contains one of the substrings (all when none is given) and
 * closes with "N passed, N failed, N skipped". */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

#define MAX_CASES 2048

typedef struct {
    const char *name, *file;
    void (*fn)(void);
} test_case;
static test_case cases[MAX_CASES];
static int n_cases;
static int cur_failed, cur_skipped;
unsigned long long mt_seed;

void mt_register(const char *name, void (*fn)(void), const char *file)
{
    if (n_cases == MAX_CASES) {
        fprintf(stderr, "too many test cases; raise MAX_CASES\n");
        exit(2);
    }
    cases[n_cases].name = name;
    cases[n_cases].fn = fn;
    cases[n_cases].file = file;
    n_cases++;
}

void mt_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stdout, "    %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    fprintf(stdout, " (seed %llu)\n", mt_seed);
    cur_failed = 1;
}

void mt_skip(const char *reason)
{
    fprintf(stdout, "    skipped: %s\n", reason);
    cur_skipped = 1;
}

static int selected(int i, int argc, char **argv)
{
    if (argc <= 1)
        return 1;
    for (int a = 1; a < argc; a++)
        if (strstr(cases[i].name, argv[a]) || strstr(cases[i].file, argv[a]))
            return 1;
    return 0;
}

static int by_file_then_name(const void *pa, const void *pb)
{
    const test_case *a = pa, *b = pb;
    int c = strcmp(a->file, b->file);
    return c ? c : strcmp(a->name, b->name);
}

int main(int argc, char **argv)
{
    int passed = 0, failed = 0, skipped = 0;
    /* constructors run in link order; sort so the output is stable */
    qsort(cases, (size_t)n_cases, sizeof cases[0], by_file_then_name);
    for (int i = 0; i < n_cases; i++) {
        if (!selected(i, argc, argv))
            continue;
        cur_failed = cur_skipped = 0;
        mt_seed = 12345;
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cases[i].fn();
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
        const char *tag = cur_failed ? "FAIL" : cur_skipped ? "SKIP" : "ok  ";
        fprintf(stdout, "%s %-48s %8.1f ms\n", tag, cases[i].name, ms);
        fflush(stdout);
        if (cur_failed)
            failed++;
        else if (cur_skipped)
            skipped++;
        else
            passed++;
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
