/* Small helpers shared by the files of src/data (not used elsewhere). */
#ifndef DATA_DUTIL_H
#define DATA_DUTIL_H

#include <stddef.h>

/* snprintf into err (256 bytes) when err is not NULL. */
void data_errf(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Read a whole regular file into a malloc'd buffer with one extra NUL byte
 * (*len excludes it). `what` names the file's role in messages, e.g.
 * "data file" or "encoder.json". Returns a muon_status code. */
int data_read_whole(const char *path, const char *what, char **buf, size_t *len, char *err);

#endif
