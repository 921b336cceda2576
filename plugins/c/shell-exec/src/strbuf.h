/* A growable byte buffer for building findings' text without stdio
 * (snprintf would pull WASI's fd_write into the component). */
#ifndef SHELL_EXEC_STRBUF_H
#define SHELL_EXEC_STRBUF_H

#include <stddef.h>

#include "shell.h"

typedef struct {
    char *ptr;
    size_t len;
    size_t cap;
} strbuf_t;

void sb_slice(strbuf_t *sb, slice_t s);
void sb_cstr(strbuf_t *sb, const char *s);
void sb_uint(strbuf_t *sb, unsigned long long n);
/* Gives up the buffer: the caller owns ptr (malloc'd, may be NULL when empty). */
slice_t sb_take(strbuf_t *sb);

#endif
