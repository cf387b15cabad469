/* Text input: one file, or a directory of text files concatenated. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data.h"
#include "data/dutil.h"
#include "muon.h"

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* names that are never text in a data directory: the fortunes package keeps
 * a binary index (*.dat) and a symlink (*.u8) beside each text file */
static int skipped_name(const char *name)
{
    return name[0] == '.' || ends_with(name, ".dat") || ends_with(name, ".u8") ||
           ends_with(name, ".bin");
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* sorted names in dir that are not skipped by name */
static int list_dir(const char *dir, char ***out, size_t *count, char *err)
{
    DIR *d = opendir(dir);
    if (!d) {
        data_errf(err, "cannot open data directory %s: %s", dir, strerror(errno));
        return MUON_ERR_IO;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = MUON_OK;
    while ((e = readdir(d))) {
        if (skipped_name(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            char **p = realloc(names, cap * sizeof *p);
            if (!p) {
                rc = MUON_ERR_NOMEM;
                break;
            }
            names = p;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = MUON_ERR_NOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc) {
        data_errf(err, "out of memory listing data directory %s", dir);
        free_names(names, n);
        return rc;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_names);
    *out = names;
    *count = n;
    return MUON_OK;
}

static int append(char **buf, size_t *len, size_t *cap, const char *src, size_t n)
{
    if (*len + n + 1 > *cap) {
        size_t c = *cap ? *cap : 1 << 16;
        while (c < *len + n + 1)
            c *= 2;
        char *p = realloc(*buf, c);
        if (!p)
            return MUON_ERR_NOMEM;
        *buf = p;
        *cap = c;
    }
    memcpy(*buf + *len, src, n);
    *len += n;
    (*buf)[*len] = '\0';
    return MUON_OK;
}

static int read_dir(const char *dir, char **bytes, size_t *len, int *n_files, char *err)
{
    char **names;
    size_t n_names;
    int rc = list_dir(dir, &names, &n_names, err);
    if (rc)
        return rc;
    char *buf = NULL, path[4096];
    size_t blen = 0, cap = 0;
    int used = 0;
    for (size_t i = 0; i < n_names && !rc; i++) {
        struct stat st;
        if (snprintf(path, sizeof path, "%s/%s", dir, names[i]) >= (int)sizeof path) {
            data_errf(err, "path too long in data directory %s: %.100s", dir, names[i]);
            rc = MUON_ERR_ARG;
            break;
        }
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0)
            continue;
        char *text;
        size_t tlen;
        rc = data_read_whole(path, "data file", &text, &tlen, err);
        if (rc)
            break;
        if (!memchr(text, '\0', tlen)) { /* a NUL byte marks a binary file */
            rc = append(&buf, &blen, &cap, text, tlen);
            if (!rc && text[tlen - 1] != '\n')
                rc = append(&buf, &blen, &cap, "\n", 1);
            if (rc)
                data_errf(err, "out of memory reading data directory %s", dir);
            used++;
        }
        free(text);
    }
    free_names(names, n_names);
    if (!rc && used == 0) {
        data_errf(err, "data directory %s has no non-empty text files", dir);
        rc = MUON_ERR_FORMAT;
    }
    if (rc) {
        free(buf);
        return rc;
    }
    *bytes = buf;
    *len = blen;
    if (n_files)
        *n_files = used;
    return MUON_OK;
}

int data_read_text(const char *path, char **bytes, size_t *len, int *n_files, char *err)
{
    if (!path || !bytes || !len) {
        data_errf(err, "data_read_text: NULL argument");
        return MUON_ERR_NULL;
    }
    struct stat st;
    if (stat(path, &st) != 0) {
        data_errf(err, "cannot open data file %s: %s", path, strerror(errno));
        return MUON_ERR_IO;
    }
    if (S_ISDIR(st.st_mode))
        return read_dir(path, bytes, len, n_files, err);
    char *text;
    size_t tlen;
    int rc = data_read_whole(path, "data file", &text, &tlen, err);
    if (rc)
        return rc;
    if (tlen == 0) {
        free(text);
        data_errf(err, "data file %s is empty", path);
        return MUON_ERR_FORMAT;
    }
    *bytes = text;
    *len = tlen;
    if (n_files)
        *n_files = 1;
    return MUON_OK;
}
