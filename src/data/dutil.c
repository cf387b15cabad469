/* Helpers for src/data: error messages and checked whole-file reads. */
#include "data/dutil.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "muon.h"

void data_errf(char *err, const char *fmt, ...)
{
    if (!err)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, 256, fmt, ap);
    va_end(ap);
}

int data_read_whole(const char *path, const char *what, char **buf, size_t *len, char *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        data_errf(err, "cannot open %s %s: %s", what, path, strerror(errno));
        return MUON_ERR_IO;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        data_errf(err, "%s %s is not a regular file", what, path);
        fclose(f);
        return MUON_ERR_IO;
    }
    size_t size = (size_t)st.st_size;
    char *b = malloc(size + 1);
    if (!b) {
        data_errf(err, "out of memory reading %s %s (%zu bytes)", what, path, size);
        fclose(f);
        return MUON_ERR_NOMEM;
    }
    size_t got = fread(b, 1, size, f);
    /* a file that grew or shrank while we read it is reported, not trusted */
    int extra = fgetc(f);
    if (got != size || ferror(f) || extra != EOF) {
        data_errf(err, "cannot read %s %s: %s", what, path,
                  ferror(f) ? strerror(errno) : "size changed while reading");
        free(b);
        fclose(f);
        return MUON_ERR_IO;
    }
    fclose(f);
    b[size] = '\0';
    *buf = b;
    *len = size;
    return MUON_OK;
}

int data_ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void data_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int data_list_dir(const char *dir, int (*keep)(const char *dir, const char *name),
                  char ***out, size_t *count, char *err)
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
        if (!keep(dir, e->d_name))
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
        data_free_names(names, n);
        return rc;
    }
    if (n > 1)
        qsort(names, n, sizeof *names, cmp_names);
    *out = names;
    *count = n;
    return MUON_OK;
}
