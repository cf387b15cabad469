/* The checkpoint container: a versioned, checksummed list of tagged
 * sections. The trainer decides what goes in them (train/checkpoint.c). */
#ifndef MUON_TRAIN_CKPT_H
#define MUON_TRAIN_CKPT_H

#include <stddef.h>
#include <stdint.h>

#define CKPT_MAGIC "MUONCKPT"
#define CKPT_VERSION 1u
#define CKPT_MAX_SECTIONS 16

/* Four-character section tags, e.g. CKPT_TAG('C','O','N','F'). */
#define CKPT_TAG(a, b, c, d) \
    ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

typedef struct {
    uint32_t tag;
    const void *data;
    uint64_t len;
} ckpt_section;

typedef struct {
    unsigned char *buf; /* the whole file */
    size_t len;
    ckpt_section sec[CKPT_MAX_SECTIONS];
    int n;
} ckpt_file;

/* Write sections to path through a temporary file and a rename, so an
 * existing checkpoint is replaced whole or not at all. 0 or -1 + err. */
int ckpt_write(const char *path, const ckpt_section *sections, int n, char *err, size_t errcap);
/* Read and validate (magic, version, lengths, CRC-32) a whole checkpoint. */
int ckpt_read(const char *path, ckpt_file *out, char *err, size_t errcap);
const ckpt_section *ckpt_find(const ckpt_file *f, uint32_t tag);
void ckpt_close(ckpt_file *f);

#endif
