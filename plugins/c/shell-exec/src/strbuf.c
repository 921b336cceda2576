/* A growable byte buffer (see strbuf.h). On allocation failure the text is
 * truncated rather than lost: a finding with a shorter summary beats a trap. */
#include "strbuf.h"

#include <stdlib.h>
#include <string.h>

static int reserve(strbuf_t *sb, size_t more) {
    if (sb->len + more <= sb->cap) return 1;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + more) cap *= 2;
    char *grown = realloc(sb->ptr, cap);
    if (!grown) return 0;
    sb->ptr = grown;
    sb->cap = cap;
    return 1;
}

void sb_slice(strbuf_t *sb, slice_t s) {
    if (s.len == 0 || !reserve(sb, s.len)) return;
    memcpy(sb->ptr + sb->len, s.ptr, s.len);
    sb->len += s.len;
}

void sb_cstr(strbuf_t *sb, const char *s) { sb_slice(sb, slice_cstr(s)); }

void sb_uint(strbuf_t *sb, unsigned long long n) {
    char digits[24];
    size_t i = sizeof digits;
    do {
        digits[--i] = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    slice_t s = {digits + i, sizeof digits - i};
    sb_slice(sb, s);
}

slice_t sb_take(strbuf_t *sb) {
    slice_t out = {sb->ptr, sb->len};
    sb->ptr = NULL;
    sb->len = sb->cap = 0;
    return out;
}
