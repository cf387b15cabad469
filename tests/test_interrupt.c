/* A long run under interruptions (docs/reliability.md): SIGKILL at random
 * moments of a run that checkpoints every step, 50 times over, each
 * restart resuming with --resume auto; SIGTERM and SIGINT finishing the
 * step and writing a checkpoint; a second signal ending the process at
 * once; and steps with a NaN gradient refused without touching the
 * parameters or the optimizer state. */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "testutil.h"
#include "train/train.h"

extern char **environ;

#define KTINY "--layers 1 --dim 16 --heads 2 --context 16 --batch 4 --quiet --threads 1"

static int built(void)
{
    char p[600];
    struct stat st;
    snprintf(p, sizeof p, "%s/muon", tu_build_dir());
    return stat(p, &st) == 0;
}

/* Start `muon` with the words of args (space-separated, no quoting) and
 * its output sent to /dev/null; the pid, or -1. */
static pid_t start(const char *args)
{
    static char buf[4096];
    char *argv[96];
    char exe[600];
    snprintf(exe, sizeof exe, "%s/muon", tu_build_dir());
    snprintf(buf, sizeof buf, "%s", args);
    int n = 0;
    argv[n++] = exe;
    for (char *t = strtok(buf, " "); t && n < 95; t = strtok(NULL, " "))
        argv[n++] = t;
    argv[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", 1, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", 1, 0);
    pid_t pid;
    int rc = posix_spawn(&pid, exe, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    return rc == 0 ? pid : -1;
}

/* Run `muon` with args to its end: 1 when it exited with status 0. */
static int completes(const char *args)
{
    int st = 0;
    pid_t pid = start(args);
    return pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static void sleep_ms(double ms)
{
    struct timespec t = {(time_t)(ms / 1e3), (long)(fmod(ms, 1e3) * 1e6)};
    nanosleep(&t, NULL);
}

/* Lines of a metrics.jsonl so far (0 when it does not exist yet). */
static long steps_logged(const char *path)
{
    char *t = tu_read_file(path, NULL);
    long n = 0;
    for (const char *p = t; p && *p; p++)
        n += *p == '\n';
    free(t);
    return n;
}

/* Wait (up to 60 s) until dir/metrics.jsonl holds n lines, so the signal
 * lands in a known step; the first steps have a test of their own. */
static void wait_for_steps(const char *dir, int n)
{
    char p[800];
    snprintf(p, sizeof p, "%s/metrics.jsonl", dir);
    for (int i = 0; i < 6000 && steps_logged(p) < n; i++)
        sleep_ms(10);
}

/* Every checkpoint*.bin of dir loads; their count into *n. */
static int all_checkpoints_load(const char *dir, int *n)
{
    DIR *d = opendir(dir);
    *n = 0;
    if (!d)
        return 1; /* nothing written yet */
    int ok = 1;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "checkpoint", 10) || len < 4 || strcmp(e->d_name + len - 4, ".bin"))
            continue;
        char p[1200], err[TRAIN_ERR_LEN];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        train_ckpt ck;
        if (train_ckpt_load(p, &ck, err, sizeof err)) {
            printf("    %s\n", err);
            ok = 0;
        } else {
            train_ckpt_free(&ck);
            (*n)++;
        }
    }
    closedir(d);
    return ok;
}

static int same_checkpoints(const char *a, const char *b)
{
    char cmd[2048], *out = NULL;
    snprintf(cmd, sizeof cmd, "'%s/muon' ckpt-diff '%s' '%s'", tu_build_dir(), a, b);
    int rc = tu_run(cmd, &out);
    int same = rc == 0 && out && strstr(out, "bit-identical");
    if (!same)
        printf("    ckpt-diff: %s", out ? out : "(no output)");
    free(out);
    return same;
}

static void write_corpus(const char *dir)
{
    char p[700];
    snprintf(p, sizeof p, "%s/text.txt", dir);
    static const char line[] = "kill it at any moment, and the run goes on from its checkpoint.\n";
    char corpus[80 * sizeof line];
    for (int i = 0; i < 80; i++)
        memcpy(corpus + i * (sizeof line - 1), line, sizeof line - 1);
    tu_write_file(p, corpus, 80 * (sizeof line - 1));
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

/* 50 SIGKILLs, each at a random moment of a run that writes a checkpoint
 * after every step (so a good share of them land inside a write); each
 * restart is the same command with --resume auto. After each kill every
 * checkpoint in the directory loads; the run is then taken to a step past
 * the last kill and ends bit-identical to one never interrupted (same
 * build, machine and threads). The kill times follow the start-up time
 * measured here, so the kills fall among the steps on any machine. */
TEST(interrupt_sigkill_fifty_times_then_identical_result)
{
    if (!built())
        SKIP("muon not built");
    const char *d = tu_tmpdir();
    write_corpus(d);
    char args[2048], dir[700];
    const long steps = 1000000; /* never reached: the schedule is the same for both runs */
    snprintf(args, sizeof args,
             "train --data %s/text.txt --out %s/killed --resume auto " KTINY " --steps %ld "
             "--eval-every 50 --precision fp32 --checkpoint-every 1 --keep-checkpoints 2",
             d, d, steps);
    snprintf(dir, sizeof dir, "%s/killed", d);
    /* start-up: until the first checkpoint appears */
    char first[800];
    snprintf(first, sizeof first, "%s/checkpoint-000000001.bin", dir);
    double t0 = now_ms(), startup = 0;
    pid_t pid = start(args);
    ASSERT(pid > 0);
    struct stat sb;
    while (stat(first, &sb) != 0 && now_ms() - t0 < 30000)
        sleep_ms(1);
    startup = now_ms() - t0;
    kill(pid, SIGKILL);
    int st = 0;
    ASSERT(waitpid(pid, &st, 0) == pid);
    tu_rng r;
    tu_seed(&r, mt_seed);
    int kills = 0, most = 0;
    for (int round = 0; round < 50; round++) {
        pid = start(args);
        ASSERT(pid > 0);
        sleep_ms(startup * (0.8 + 0.6 * tu_uniform(&r)));
        kill(pid, SIGKILL);
        ASSERT(waitpid(pid, &st, 0) == pid);
        kills += WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
        int n = 0;
        ASSERT(all_checkpoints_load(dir, &n));
        most = n > most ? n : most;
    }
    char latest[800], err[TRAIN_ERR_LEN];
    long at = 0;
    ASSERT_EQ_INT(train_find_latest(dir, latest, sizeof latest, &at, err, sizeof err), 0);
    printf("    start-up %.0f ms; %d kills; up to %d checkpoints at once, all loading; "
           "the newest at step %ld\n",
           startup, kills, most, at);
    ASSERT_EQ_INT(kills, 50);
    ASSERT(at >= 2);
    /* on to at + 5 from there, and the same without interruption */
    snprintf(args + strlen(args), sizeof args - strlen(args), " --stop-at %ld", at + 5);
    ASSERT(completes(args));
    snprintf(args, sizeof args,
             "train --data %s/text.txt --out %s/whole " KTINY " --steps %ld --eval-every 50 "
             "--precision fp32 --stop-at %ld",
             d, d, steps, at + 5);
    ASSERT(completes(args));
    char a[800], b[800];
    snprintf(a, sizeof a, "%s/whole/checkpoint.bin", d);
    snprintf(b, sizeof b, "%s/killed/checkpoint.bin", d);
    ASSERT(same_checkpoints(a, b));
}

/* SIGTERM (and SIGINT): the step in progress finishes, checkpoint.bin is
 * written, the exit status is TRAIN_STOPPED (3); resuming to step K gives
 * the run that went to K without a stop. */
TEST(interrupt_sigterm_and_sigint_stop_with_a_checkpoint)
{
    if (!built())
        SKIP("muon not built");
    const char *d = tu_tmpdir();
    write_corpus(d);
    const int sigs[2] = {SIGTERM, SIGINT};
    for (int i = 0; i < 2; i++) {
        char args[2048], dir[700], ck[800];
        snprintf(dir, sizeof dir, "%s/run%d", d, i);
        snprintf(args, sizeof args,
                 "train --data %s/text.txt --out %s " KTINY " --steps 100000 --eval-every 1000 "
                 "--precision fp32 --checkpoint-minutes 0",
                 d, dir);
        pid_t pid = start(args);
        ASSERT(pid > 0);
        wait_for_steps(dir, 3);
        kill(pid, sigs[i]);
        int st = 0;
        ASSERT(waitpid(pid, &st, 0) == pid);
        ASSERT(WIFEXITED(st));
        ASSERT_EQ_INT(WEXITSTATUS(st), TRAIN_STOPPED);
        snprintf(ck, sizeof ck, "%s/checkpoint.bin", dir);
        train_ckpt c;
        char err[TRAIN_ERR_LEN];
        ASSERT(train_ckpt_load(ck, &c, err, sizeof err) == 0);
        long at = c.step;
        train_ckpt_free(&c);
        printf("    signal %d: stopped after step %ld with a checkpoint\n", sigs[i], at);
        ASSERT(at >= 1);
        /* resume to at + 3, against a run that went there directly */
        snprintf(args, sizeof args, "train --resume %s --stop-at %ld --quiet --threads 1", ck,
                 at + 3);
        ASSERT(completes(args));
        snprintf(args, sizeof args,
                 "train --data %s/text.txt --out %s/direct%d " KTINY " --steps 100000 "
                 "--eval-every 1000 --precision fp32 --stop-at %ld",
                 d, d, i, at + 3);
        ASSERT(completes(args));
        char direct[800];
        snprintf(direct, sizeof direct, "%s/direct%d/checkpoint.bin", d, i);
        ASSERT(same_checkpoints(ck, direct));
    }
}

/* Two signals in a row: the second ends the process at once, by that
 * signal, without waiting for the step (a model whose step takes long). */
TEST(interrupt_second_signal_exits_at_once)
{
    if (!built())
        SKIP("muon not built");
    const char *d = tu_tmpdir();
    write_corpus(d);
    char args[2048];
    snprintf(args, sizeof args,
             "train --data %s/text.txt --out %s/slow --layers 4 --dim 256 --heads 4 --context 64 "
             "--batch 16 --quiet --threads 1 --steps 1000 --precision fp32 --checkpoint-minutes 0",
             d, d);
    pid_t pid = start(args);
    ASSERT(pid > 0);
    char dir[700];
    snprintf(dir, sizeof dir, "%s/slow", d);
    wait_for_steps(dir, 2);
    kill(pid, SIGINT);
    sleep_ms(20);
    kill(pid, SIGINT);
    int st = 0;
    ASSERT(waitpid(pid, &st, 0) == pid);
    if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGINT))
        printf("    status %d: %s %d\n", st, WIFEXITED(st) ? "exit" : "signal",
               WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    ASSERT(WIFSIGNALED(st) && WTERMSIG(st) == SIGINT);
}

/* --fault-nan-at poisons the gradient of chosen steps: with the default
 * --on-nonfinite skip those steps change nothing (parameters and optimizer
 * state bit-identical to the step before), metrics.jsonl marks and counts
 * them, and the run goes on; --max-skips bounds them; abort stops at the
 * first. */
TEST(interrupt_nonfinite_steps_skipped_or_aborted)
{
    if (!built())
        SKIP("muon not built");
    const char *d = tu_tmpdir();
    write_corpus(d);
    char cmd[2048], *out = NULL;
    /* the state after step 3, and after a step 4 that was refused */
    snprintf(cmd, sizeof cmd,
             "B='%s/muon'; D='%s'; F='--data %s/text.txt " KTINY " --steps 10 --precision fp32'; "
             "$B train $F --out $D/s3 --stop-at 3 && "
             "$B train $F --out $D/s4 --stop-at 4 --fault-nan-at 4 && "
             "$B train $F --out $D/all --fault-nan-at 4,6",
             tu_build_dir(), d, d);
    ASSERT_EQ_INT(tu_run(cmd, NULL), 0);
    char a[800], b[800];
    snprintf(a, sizeof a, "%s/s3/checkpoint.bin", d);
    snprintf(b, sizeof b, "%s/s4/checkpoint.bin", d);
    /* ckpt-diff compares parameters and optimizer state, not the step */
    snprintf(cmd, sizeof cmd, "'%s/muon' ckpt-diff '%s' '%s'", tu_build_dir(), a, b);
    ASSERT_EQ_INT(tu_run(cmd, &out), 0);
    int same = out && strstr(out, "bit-identical");
    if (!same)
        printf("    ckpt-diff: %s", out ? out : "");
    free(out);
    ASSERT(same);
    snprintf(a, sizeof a, "%s/all/metrics.jsonl", d);
    char *m = tu_read_file(a, NULL);
    ASSERT(m);
    int marked = strstr(m, "{\"step\":4,\"skipped\":true") && strstr(m, "{\"step\":6,\"skipped\":true");
    int counted = strstr(m, "\"skipped_steps\":2") != NULL;
    int went_on = strstr(m, "{\"step\":10,") != NULL;
    free(m);
    ASSERT(marked && counted && went_on);
    /* more poisoned steps than --max-skips, and abort */
    snprintf(cmd, sizeof cmd,
             "'%s/muon' train --data %s/text.txt --out %s/few " KTINY
             " --steps 10 --fault-nan-at 2,3,4 --max-skips 2",
             tu_build_dir(), d, d);
    ASSERT_EQ_INT(tu_run(cmd, &out), 1);
    ASSERT(out && strstr(out, "step 4") && strstr(out, "max-skips"));
    free(out);
    snprintf(cmd, sizeof cmd,
             "'%s/muon' train --data %s/text.txt --out %s/ab " KTINY
             " --steps 10 --fault-nan-at 5 --on-nonfinite abort",
             tu_build_dir(), d, d);
    ASSERT_EQ_INT(tu_run(cmd, &out), 1);
    ASSERT(out && strstr(out, "step 5") && strstr(out, "not finite"));
    free(out);
    /* bad values refused before any file is written */
    snprintf(cmd, sizeof cmd,
             "'%s/muon' train --data %s/text.txt --out %s/bad " KTINY " --on-nonfinite maybe",
             tu_build_dir(), d, d);
    ASSERT_EQ_INT(tu_run(cmd, &out), 2);
    ASSERT(out && strstr(out, "skip or abort"));
    free(out);
    snprintf(cmd, sizeof cmd, "test ! -e '%s/bad'", d);
    ASSERT_EQ_INT(tu_run(cmd, NULL), 0);
}

/* Resident memory of a long run stays flat: sampled from /proc while 3000
 * steps run (an evaluation every 100, a periodic checkpoint every 250),
 * the largest RSS of the last third exceeds that of the first third by
 * less than a leak of 64 bytes a step would add over the steps between
 * them, plus one checkpoint's size: glibc serves a large block from the
 * heap once one of its size has been freed (its mmap threshold adapts),
 * which grows the heap once by the largest buffer the run allocates. The
 * step allocates nothing in fp32; evaluations and checkpoints allocate and
 * free. */
static long rss_kib(pid_t pid)
{
    char p[64], line[256];
    snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
    FILE *f = fopen(p, "r");
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmRSS:", 6))
            v = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return v;
}


TEST(interrupt_long_run_memory_stays_flat)
{
#if defined(__SANITIZE_ADDRESS__)
    SKIP("AddressSanitizer keeps freed memory in quarantine: RSS grows by design");
#endif
    if (!built())
        SKIP("muon not built");
    const char *d = tu_tmpdir();
    write_corpus(d);
    char args[2048], metrics[800];
    const long steps = 3000;
    snprintf(args, sizeof args,
             "train --data %s/text.txt --out %s/long " KTINY " --steps %ld --eval-every 100 "
             "--eval-batches 2 --precision fp32 --checkpoint-every 250",
             d, d, steps);
    snprintf(metrics, sizeof metrics, "%s/long/metrics.jsonl", d);
    pid_t pid = start(args);
    ASSERT(pid > 0);
    long early = 0, late = 0, at_early = -1, at_late = -1;
    int st = 0, samples = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid)
            break;
        long kib = rss_kib(pid), s = steps_logged(metrics);
        if (kib > 0 && s > 0) {
            samples++;
            if (s <= steps / 3 && kib > early) {
                early = kib;
                at_early = s;
            }
            if (s >= 2 * steps / 3 && kib > late) {
                late = kib;
                at_late = s;
            }
        }
        sleep_ms(10);
    }
    ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    printf("    %d samples: RSS %ld KiB by step %ld, %ld KiB by step %ld\n", samples, early,
           at_early, late, at_late);
    ASSERT(at_early > 0 && at_late > at_early);
    char ck[800];
    struct stat sb;
    snprintf(ck, sizeof ck, "%s/long/checkpoint.bin", d);
    ASSERT(stat(ck, &sb) == 0);
    double allowed_kib = (64.0 * (double)(at_late - at_early) + (double)sb.st_size) / 1024.0;
    printf("    growth %ld KiB, allowed %.0f KiB\n", late - early, allowed_kib);
    ASSERT_LE((double)(late - early), allowed_kib);
}

/* A signal at any moment of the first steps, when oneDNN builds and first
 * runs its kernels: the run stops with its checkpoint (or, before the
 * handler is installed, dies of the signal), never of a corrupted heap
 * (docs/reliability.md: why the handler has a stack of its own). */
TEST(interrupt_signal_during_the_first_steps_is_safe)
{
    if (!built())
        SKIP("muon not built");
    const char *d = tu_tmpdir();
    write_corpus(d);
    tu_rng r;
    tu_seed(&r, mt_seed);
    int stopped = 0, early = 0;
    for (int i = 0; i < 16; i++) {
        char args[2048];
        snprintf(args, sizeof args,
                 "train --data %s/text.txt --out %s/early%d --layers 4 --dim 256 --heads 4 "
                 "--context 64 --batch 16 --quiet --threads 1 --steps 1000 --precision fp32 "
                 "--checkpoint-minutes 0",
                 d, d, i);
        pid_t pid = start(args);
        ASSERT(pid > 0);
        sleep_ms(100 + 400 * tu_uniform(&r));
        kill(pid, SIGINT);
        int st = 0;
        ASSERT(waitpid(pid, &st, 0) == pid);
        int ok = (WIFEXITED(st) && WEXITSTATUS(st) == 3) ||
                 (WIFSIGNALED(st) && WTERMSIG(st) == SIGINT);
        if (!ok)
            printf("    run %d: %s %d\n", i, WIFEXITED(st) ? "exit" : "signal",
                   WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
        ASSERT(ok);
        stopped += WIFEXITED(st);
        early += WIFSIGNALED(st);
    }
    printf("    16 signals: %d runs stopped with a checkpoint, %d before the handler\n", stopped,
           early);
}
