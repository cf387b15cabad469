/* Text input: one file, or a directory of text files concatenated. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "data/data.h"
#include "data/dutil.h"
#include "muon.h"

/* keep the names that can be text in a data directory: the fortunes package keeps
 * a binary index (*.dat) and a symlink (*.u8) beside each text file */
static int text_name(const char *dir, const char *name)
{
    (void)dir;
    return !(name[0] == '.' || data_ends_with(name, ".dat") || data_ends_with(name, ".u8") ||
             data_ends_with(name, ".bin"));
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
    int rc = data_list_dir(dir, text_name, &names, &n_names, err);
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
    data_free_names(names, n_names);
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
