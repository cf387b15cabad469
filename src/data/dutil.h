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

/* 1 if s ends with suffix. */
int data_ends_with(const char *s, const char *suffix);

/* The names in dir for which keep(dir, name) is non-zero, sorted by strcmp,
 * as malloc'd strings (*count 0 when there are none). Free with
 * data_free_names. Returns a muon_status code. */
int data_list_dir(const char *dir, int (*keep)(const char *dir, const char *name),
                  char ***names, size_t *count, char *err);
void data_free_names(char **names, size_t n);

#endif
