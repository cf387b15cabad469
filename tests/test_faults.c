/* Allocation failures injected into the command-line tool: every
 * allocation the program's own code makes (the model, the optimizer, the
 * data loader, the checkpoint code, the CLI) is made to fail in turn, one
 * per run, through the LD_PRELOAD shim tests/fault/failmalloc.c. Each run
 * must end either normally (where a fallback exists: the bf16 products
 * widen to fp32 when oneDNN's workspace cannot be had) or with a non-zero
 * exit and a message saying memory ran out, and never by a signal, with a
 * NaN loss, or with the checkpoint it resumed from changed. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/data.h"
#include "harness.h"
#include "testutil.h"

#define FTINY "--layers 1 --dim 16 --heads 2 --context 16 --batch 4 --quiet --threads 1"

static int shim_path(char *p, size_t cap)
{
    struct stat st;
    snprintf(p, cap, "%s/libfailmalloc.so", tu_build_dir());
    return stat(p, &st) == 0;
}

/* Run `muon ARGS` (@ = dir) with the shim failing call k (0: none); with
 * count != NULL the number of counted calls is read back into it. */
static int run_failing(const char *dir, const char *args, long k, long *count, char **out)
{
    char shim[600], cmd[8192], rep[700];
    shim_path(shim, sizeof shim);
    snprintf(rep, sizeof rep, "%s/count.txt", dir);
    size_t n = (size_t)snprintf(cmd, sizeof cmd, "MUON_FAIL_AT=%ld %s%s LD_PRELOAD='%s' '%s/muon' ",
                                k, count ? "MUON_FAIL_REPORT=" : "", count ? rep : "", shim,
                                tu_build_dir());
    for (const char *p = args; *p && n + strlen(dir) + 2 < sizeof cmd; p++)
        n += (size_t)(*p == '@' ? snprintf(cmd + n, sizeof cmd - n, "%s", dir)
                                : snprintf(cmd + n, sizeof cmd - n, "%c", *p));
    int rc = tu_run(cmd, out);
    if (count) {
        char *t = tu_read_file(rep, NULL);
        *count = t ? strtol(t, NULL, 10) : -1;
        free(t);
    }
    return rc;
}

static int has(const char *out, const char *word)
{
    return out && strstr(out, word);
}

/* One scenario: every k from 1 to the number of allocations. `before`
 * (may be NULL) runs first each time to reset the directory; `keep` names
 * a file (relative to dir) that a failed run must leave byte-identical. */
static int sweep(const char *dir, const char *label, const char *args, const char *before,
                 const char *keep, int *n_err, int *n_ok)
{
    long total = 0;
    char *out = NULL;
    if (before && tu_run(before, NULL) != 0)
        return 0;
    int rc = run_failing(dir, args, 0, &total, &out);
    if (rc != 0 || total < 5) {
        printf("    %s: the clean run gave exit %d, %ld allocations: %s", label, rc, total,
               out ? out : "");
        free(out);
        return 0;
    }
    free(out);
    char keep_path[800];
    size_t keep_len = 0;
    char *kept = NULL;
    if (keep) {
        snprintf(keep_path, sizeof keep_path, "%s/%s", dir, keep);
    }
    int good = 1;
    *n_err = *n_ok = 0;
    /* every allocation of the set-up; where the products allocate in every
     * step (bf16 widened to fp32 on CPUs without bf16 units: hundreds),
     * every stride-th of those, so the sweep stays near 150 runs */
    long stride = total > 150 ? (total - 60) / 90 + 1 : 1;
    for (long k = 1; k <= total && good; k += k < 60 ? 1 : stride) {
        if (before && tu_run(before, NULL) != 0)
            return 0;
        if (keep) {
            free(kept);
            kept = tu_read_file(keep_path, &keep_len);
        }
        rc = run_failing(dir, args, k, NULL, &out);
        int crashed = rc < 0 || rc >= 126;
        int nan = has(out, "nan") || has(out, "NaN") || has(out, "diverged");
        int said = has(out, "out of memory") || has(out, "cannot allocate");
        if (crashed || nan || (rc != 0 && !said) || (rc == 0 && !has(out, "done")))
            good = 0;
        if (rc != 0 && keep) {
            size_t len = 0;
            char *now = tu_read_file(keep_path, &len);
            if (!now || len != keep_len || memcmp(now, kept, len)) {
                printf("    %s, allocation %ld: %s changed\n", label, k, keep);
                good = 0;
            }
            free(now);
        }
        if (!good)
            printf("    %s, allocation %ld of %ld failing: exit %d: %s", label, k, total, rc,
                   out ? out : "");
        rc != 0 ? (*n_err)++ : (*n_ok)++;
        free(out);
    }
    free(kept);
    printf("    %s: %ld allocations, %d failed one at a time: %d clear errors, %d recovered\n",
           label, total, *n_err + *n_ok, *n_err, *n_ok);
    return good;
}

TEST(faults_every_failed_allocation_is_a_clear_error)
{
#if defined(__SANITIZE_ADDRESS__)
    SKIP("the sanitizer's allocator replaces the shim's");
#endif
    char shim[600];
    if (!shim_path(shim, sizeof shim))
        SKIP("libfailmalloc.so not built");
    const char *d = tu_tmpdir();
    char p[700];
    snprintf(p, sizeof p, "%s/text.txt", d);
    static const char line[] = "a failing allocation must say so, and never train on garbage.\n";
    char corpus[50 * sizeof line];
    for (int i = 0; i < 50; i++)
        memcpy(corpus + i * (sizeof line - 1), line, sizeof line - 1);
    ASSERT(tu_write_file(p, corpus, 50 * (sizeof line - 1)) == 0);
    int32_t ids[3000];
    for (int i = 0; i < 3000; i++)
        ids[i] = (i * 7 + i / 13) % 200;
    char err[256];
    snprintf(p, sizeof p, "%s/tokens_train.bin", d);
    ASSERT_OK(data_shard_write(p, ids, 3000, err));
    /* the checkpoint the resume runs start from, and a pristine copy */
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "'%s/muon' train --data '%s/text.txt' --out '%s/base' " FTINY
             " --steps 3 --eval-every 3 --precision fp32 >/dev/null && cp -r '%s/base' '%s/base0'",
             tu_build_dir(), d, d, d, d);
    ASSERT_EQ_INT(tu_run(cmd, NULL), 0);
    char reset[2048];
    snprintf(reset, sizeof reset, "rm -rf '%s/base' && cp -r '%s/base0' '%s/base'", d, d, d);
    struct {
        const char *label, *args;
        int resume;
    } cases[] = {
        {"train fp32", "train --data @/text.txt --out @/r1 " FTINY
                       " --steps 4 --eval-every 2 --precision fp32", 0},
        {"train mixed", "train --data @/text.txt --out @/r2 " FTINY
                        " --steps 4 --eval-every 2 --precision mixed", 0},
        {"train on a shard", "train --data @/tokens_train.bin --out @/r3 " FTINY
                             " --steps 3 --eval-every 3 --tokenizer byte", 0},
        {"resume", "train --resume @/base/checkpoint.bin --steps 5 --quiet --threads 1", 1},
    };
    int all_err = 0, all_ok = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n_err = 0, n_ok = 0;
        ASSERT(sweep(d, cases[i].label, cases[i].args, cases[i].resume ? reset : NULL,
                     cases[i].resume ? "base/checkpoint.bin" : NULL, &n_err, &n_ok));
        all_err += n_err;
        all_ok += n_ok;
    }
    ASSERT(all_err > 20); /* the shim did make allocations fail */
}

/* A disk that fills up, then one mounted read-only, under a run that
 * resumes: a clear error naming the file and the reason (the checkpoint's
 * when the disk fills, the metrics' first when nothing can be written), a
 * non-zero exit,
 * the checkpoint it started from byte-identical, and no temporary file
 * left beside it. Real file systems (a 2 MiB tmpfs in a private mount
 * namespace), so root and unshare(1) are needed. */
TEST(faults_full_or_read_only_disk_keeps_the_checkpoint)
{
    if (geteuid() != 0 || tu_run("command -v unshare && command -v mount", NULL) != 0)
        SKIP("needs root and unshare(1) for a private tmpfs");
    if (tu_run("unshare -m true", NULL) != 0)
        SKIP("unshare -m is not permitted here");
    const char *d = tu_tmpdir();
    char p[700];
    snprintf(p, sizeof p, "%s/text.txt", d);
    static const char line[] = "the disk is full, and the checkpoint must survive it.\n";
    char corpus[60 * sizeof line];
    for (int i = 0; i < 60; i++)
        memcpy(corpus + i * (sizeof line - 1), line, sizeof line - 1);
    ASSERT(tu_write_file(p, corpus, 60 * (sizeof line - 1)) == 0);
    static const struct {
        const char *label, *spoil, *reason;
    } cases[] = {
        /* leave 24 KiB: the metrics fit, the checkpoint does not */
        {"full disk",
         "free=$(df --output=avail -k \"$D/mnt\" | tail -1); "
         "dd if=/dev/zero of=\"$D/mnt/fill\" bs=1k count=$((free - 24)) 2>/dev/null; true",
         "No space left on device"},
        {"read-only", "mount -o remount,ro \"$D/mnt\"", "Read-only file system"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char script[4096], *out = NULL;
        snprintf(script, sizeof script,
                 "unshare -m sh -c 'D=\"%s\"; M=\"%s/muon\"; rm -rf \"$D/mnt\"; mkdir \"$D/mnt\" && "
                 "mount -t tmpfs -o size=2m none \"$D/mnt\" && "
                 "\"$M\" train --data \"$D/text.txt\" --out \"$D/mnt/run\" " FTINY
                 " --steps 3 --precision fp32 >/dev/null && "
                 "cp \"$D/mnt/run/checkpoint.bin\" \"$D/saved.bin\" && %s; "
                 "\"$M\" train --resume \"$D/mnt/run/checkpoint.bin\" --steps 6 --quiet "
                 "--threads 1; echo \"exit=$?\"; "
                 "cmp -s \"$D/mnt/run/checkpoint.bin\" \"$D/saved.bin\" && echo SAME; "
                 "echo LISTING; ls -a \"$D/mnt/run\"'",
                 d, tu_build_dir(), cases[i].spoil);
        ASSERT_EQ_INT(tu_run(script, &out), 0);
        const char *listing = out ? strstr(out, "LISTING") : NULL;
        int ok = has(out, "exit=1") && has(out, cases[i].reason) && has(out, "muon train: ") &&
                 has(out, "SAME") && listing && !strstr(listing, ".tmp");
        printf("    %s: %s", cases[i].label, ok ? "clear error, checkpoint intact\n" : out);
        free(out);
        ASSERT(ok);
    }
}
