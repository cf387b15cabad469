/* Helpers for src/data: error messages and checked whole-file reads. */
#include "data/dutil.h"

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
