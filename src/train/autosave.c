/* Periodic checkpoints of a long run: their names, keeping the newest K,
 * and finding the newest complete checkpoint for --resume auto
 * (docs/reliability.md). Periodic checkpoints are DIR/checkpoint-STEP.bin
 * beside the final DIR/checkpoint.bin; each is written to a temporary name
 * and renamed, so a name that exists is a whole file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/dutil.h"
#include "train/train.h"

#define PERIODIC_PREFIX "checkpoint-"

int train_periodic_path(char *buf, size_t cap, const char *dir, long step)
{
    int n = snprintf(buf, cap, "%s/" PERIODIC_PREFIX "%09ld.bin", dir, step);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

static int is_periodic(const char *dir, const char *name)
{
    (void)dir;
    size_t n = strlen(name), p = strlen(PERIODIC_PREFIX);
    return n == p + 9 + 4 && !strncmp(name, PERIODIC_PREFIX, p) && !strcmp(name + n - 4, ".bin") &&
           strspn(name + p, "0123456789") == 9;
}

static int is_any_checkpoint(const char *dir, const char *name)
{
    return !strcmp(name, "checkpoint.bin") || is_periodic(dir, name);
}

int train_prune_checkpoints(const char *dir, int keep, char *err, size_t errcap)
{
    char **names = NULL, derr[256];
    size_t n = 0;
    if (data_list_dir(dir, is_periodic, &names, &n, derr)) {
        snprintf(err, errcap, "%s", derr);
        return -1;
    }
    int rc = 0;
    /* sorted by name, and the zero-padded step makes that step order */
    for (size_t i = 0; i + (size_t)keep < n; i++) {
        char path[TRAIN_PATH_MAX + 32];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (unlink(path) != 0 && !rc) {
            snprintf(err, errcap, "cannot remove the old checkpoint %s", path);
            rc = -1;
        }
    }
    data_free_names(names, n);
    return rc;
}

int train_find_latest(const char *dir, char *path, size_t cap, long *step, char *err,
                      size_t errcap)
{
    char **names = NULL, derr[256];
    size_t n = 0;
    if (data_list_dir(dir, is_any_checkpoint, &names, &n, derr)) {
        snprintf(err, errcap, "%s", derr);
        return -1;
    }
    long best = -1;
    for (size_t i = 0; i < n; i++) {
        char p[TRAIN_PATH_MAX + 32], lerr[TRAIN_ERR_LEN];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        train_ckpt ck;
        /* one that does not load (another program's file, a damaged disk)
         * is passed over: the newest that loads is the one to continue */
        if (train_ckpt_load(p, &ck, lerr, sizeof lerr))
            continue;
        if (ck.step > best && strlen(p) < cap) {
            best = ck.step;
            snprintf(path, cap, "%s", p);
        }
        train_ckpt_free(&ck);
    }
    data_free_names(names, n);
    if (best < 0)
        return 1;
    *step = best;
    return 0;
}
