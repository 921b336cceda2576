/* Command lines and shells (see shell.h). No stdio, no allocation. */
#include "shell.h"

#include <string.h>

const char *const SHELL_DEFAULTS[] = {"sh", "bash", "ash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish"};
const size_t SHELL_DEFAULTS_COUNT = sizeof(SHELL_DEFAULTS) / sizeof(SHELL_DEFAULTS[0]);

slice_t slice_cstr(const char *s) {
    slice_t out = {s, strlen(s)};
    return out;
}

bool slice_eq(slice_t a, slice_t b) {
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

bool slice_eq_cstr(slice_t a, const char *b) { return slice_eq(a, slice_cstr(b)); }

static bool starts_with(slice_t s, const char *prefix) {
    size_t n = strlen(prefix);
    return s.len >= n && memcmp(s.ptr, prefix, n) == 0;
}

static bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

void argv_split(slice_t command, argv_t *out) {
    out->count = 0;
    size_t i = 0;
    while (i < command.len && out->count < SHELL_MAX_ARGS) {
        while (i < command.len && is_blank(command.ptr[i])) i++;
        size_t start = i;
        while (i < command.len && !is_blank(command.ptr[i])) i++;
        if (i > start) {
            out->arg[out->count].ptr = command.ptr + start;
            out->arg[out->count].len = i - start;
            out->count++;
        }
    }
}

static int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Decodes a query value into buf at *used; returns the decoded slice
 * (truncated when buf is full). */
static slice_t url_decode(slice_t v, char *buf, size_t cap, size_t *used) {
    size_t start = *used;
    for (size_t i = 0; i < v.len && *used < cap; i++) {
        char c = v.ptr[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%' && i + 2 < v.len && hex_value(v.ptr[i + 1]) >= 0 && hex_value(v.ptr[i + 2]) >= 0) {
            c = (char)(hex_value(v.ptr[i + 1]) * 16 + hex_value(v.ptr[i + 2]));
            i += 2;
        }
        buf[(*used)++] = c;
    }
    slice_t out = {buf + start, *used - start};
    return out;
}

bool argv_from_exec_uri(slice_t uri, char *buf, size_t cap, argv_t *out, slice_t *container, bool *tty) {
    out->count = 0;
    container->ptr = "";
    container->len = 0;
    *tty = false;
    size_t q = 0;
    while (q < uri.len && uri.ptr[q] != '?') q++;
    if (q == uri.len) return false;
    size_t used = 0;
    size_t i = q + 1;
    while (i < uri.len) {
        size_t start = i;
        while (i < uri.len && uri.ptr[i] != '&') i++;
        slice_t param = {uri.ptr + start, i - start};
        i++; /* past '&' */
        size_t eq = 0;
        while (eq < param.len && param.ptr[eq] != '=') eq++;
        slice_t key = {param.ptr, eq};
        slice_t value = {param.ptr + (eq < param.len ? eq + 1 : eq), eq < param.len ? param.len - eq - 1 : 0};
        if (slice_eq_cstr(key, "command")) {
            if (out->count >= SHELL_MAX_ARGS) continue;
            /* Arguments are laid out space-separated so that a span of
             * them reads like a command line. */
            if (out->count > 0 && used < cap) buf[used++] = ' ';
            out->arg[out->count++] = url_decode(value, buf, cap, &used);
        } else if (slice_eq_cstr(key, "container")) {
            if (container->len == 0) *container = url_decode(value, buf, cap, &used);
        } else if (slice_eq_cstr(key, "tty")) {
            *tty = slice_eq_cstr(value, "true") || slice_eq_cstr(value, "1");
        }
    }
    return out->count > 0;
}

static slice_t base_name(slice_t path) {
    size_t i = path.len;
    while (i > 0 && path.ptr[i - 1] != '/') i--;
    slice_t out = {path.ptr + i, path.len - i};
    return out;
}

static bool in_list(slice_t word, const slice_t *list, size_t n, slice_t *matched) {
    for (size_t i = 0; i < n; i++) {
        if (slice_eq(word, list[i])) {
            *matched = list[i];
            return true;
        }
    }
    return false;
}

/* The span from the start of argv[from] to the end of the last word. */
static slice_t span(const argv_t *argv, size_t from) {
    slice_t out = {"", 0};
    if (from >= argv->count) return out;
    const char *start = argv->arg[from].ptr;
    const slice_t *last = &argv->arg[argv->count - 1];
    out.ptr = start;
    out.len = (size_t)(last->ptr + last->len - start);
    return out;
}

shell_match_t shell_classify(const argv_t *argv, const slice_t *shells, size_t shells_count) {
    shell_match_t none = {SHELL_NONE, {"", 0}, {"", 0}};
    size_t i = 0;
    /* Wrappers that run their argument: `busybox sh`, `env [-i] [K=V…] sh`. */
    while (i < argv->count) {
        slice_t prog = base_name(argv->arg[i]);
        if (slice_eq_cstr(prog, "busybox")) {
            i++;
            continue;
        }
        if (slice_eq_cstr(prog, "env")) {
            i++;
            while (i < argv->count) {
                slice_t a = argv->arg[i];
                bool assignment = memchr(a.ptr, '=', a.len) != NULL;
                if (!starts_with(a, "-") && !assignment) break;
                i++;
            }
            continue;
        }
        break;
    }
    if (i >= argv->count) return none;
    shell_match_t m = none;
    if (!in_list(base_name(argv->arg[i]), shells, shells_count, &m.shell)) return none;
    m.kind = SHELL_INTERACTIVE;
    bool dash_c = false;
    for (size_t j = i + 1; j < argv->count; j++) {
        slice_t a = argv->arg[j];
        if (slice_eq_cstr(a, "--")) {
            if (j + 1 < argv->count) {
                m.kind = SHELL_COMMAND;
                m.command = span(argv, j + 1);
            }
            break;
        }
        if (starts_with(a, "--")) continue; /* --login, --norc … */
        if ((starts_with(a, "-") || starts_with(a, "+")) && a.len > 1) {
            /* Short options, possibly bundled (`-ec`); `-o name` takes an argument. */
            for (size_t k = 1; k < a.len; k++) {
                if (a.ptr[k] == 'c') dash_c = true;
            }
            if (slice_eq_cstr(a, "-o") || slice_eq_cstr(a, "+o")) j++;
            continue;
        }
        /* The first operand: the command string after -c, else a script. */
        m.kind = SHELL_COMMAND;
        m.command = span(argv, j);
        break;
    }
    if (dash_c) m.kind = SHELL_COMMAND;
    return m;
}
