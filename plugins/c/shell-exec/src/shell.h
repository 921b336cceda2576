/* Command lines and shells: the detection logic of shell-exec, with no
 * dependency on the component bindings so that it builds and is tested
 * natively (tests/test_shell.c).
 *
 * Strings are (pointer, length) slices, never NUL-terminated: the
 * component model hands strings over that way.
 */
#ifndef SHELL_EXEC_SHELL_H
#define SHELL_EXEC_SHELL_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *ptr;
    size_t len;
} slice_t;

slice_t slice_cstr(const char *s);
bool slice_eq(slice_t a, slice_t b);
bool slice_eq_cstr(slice_t a, const char *b);

/* An argv of at most SHELL_MAX_ARGS words, each a slice of the command it
 * was split from (or of a decoded buffer the caller owns). */
#define SHELL_MAX_ARGS 32
typedef struct {
    slice_t arg[SHELL_MAX_ARGS];
    size_t count;
} argv_t;

/* Splits a Docker exec command line (argv joined with spaces, as the
 * engine reports it) on blanks. Words past SHELL_MAX_ARGS are dropped. */
void argv_split(slice_t command, argv_t *out);

/* The `command=` parameters of a Kubernetes `pods/exec` request URI, in
 * order, percent- and plus-decoded into `buf` (of `cap` bytes; the argv
 * points into it). Also reports the `container=` parameter (decoded into
 * the same buffer) and whether `tty=true` (or `tty=1`) was asked.
 * Returns false when the URI has no `command=` parameter. */
bool argv_from_exec_uri(slice_t uri, char *buf, size_t cap, argv_t *out, slice_t *container, bool *tty);

/* What a command is, with respect to shells. */
typedef enum {
    /* Not a shell. */
    SHELL_NONE = 0,
    /* A shell with no command and no script: an interactive session. */
    SHELL_INTERACTIVE,
    /* A shell running a command (`sh -c …`) or a script (`bash x.sh`). */
    SHELL_COMMAND,
} shell_kind_t;

typedef struct {
    shell_kind_t kind;
    /* The entry of the shell list that matched (`bash`). */
    slice_t shell;
    /* The command given with `-c`, or the script; empty when interactive. */
    slice_t command;
} shell_match_t;

/* The default shell list. */
extern const char *const SHELL_DEFAULTS[];
extern const size_t SHELL_DEFAULTS_COUNT;

/* Classifies an argv against a list of shell names (compared with the
 * program's base name: `/bin/sh` is `sh`). `busybox SHELL …` and
 * `env [-i] [VAR=value …] SHELL …` count as SHELL. */
shell_match_t shell_classify(const argv_t *argv, const slice_t *shells, size_t shells_count);

#endif
