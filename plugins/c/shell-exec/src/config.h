/* The plugin's settings: parsed from the JSON the host passes to
 * `configure`, validated, every problem reported with its path. */
#ifndef SHELL_EXEC_CONFIG_H
#define SHELL_EXEC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "shell.h"

/* A list of strings; the config owns their bytes (malloc'd). */
typedef struct {
    slice_t *items;
    size_t count;
} string_list_t;

typedef struct {
    /* Program names counted as shells (compared with the base name). */
    string_list_t shells;
    /* Report only interactive shells, not `sh -c …` commands or scripts. */
    bool interactive_only;
    /* Kubernetes namespaces whose execs are not reported. */
    string_list_t ignored_namespaces;
    /* Kubernetes users (e.g. a break-glass or CI account) whose execs are not reported. */
    string_list_t ignored_users;
} config_t;

/* One problem; path and message are malloc'd, NUL-free slices. */
typedef struct {
    slice_t path;
    slice_t message;
} problem_t;

typedef struct {
    problem_t *items;
    size_t count;
} problems_t;

/* The defaults: SHELL_DEFAULTS, every exec reported, nothing ignored. */
void config_defaults(config_t *out);
/* Parses settings; on success fills *out (after freeing nothing: pass a
 * fresh config) and returns true; otherwise fills *problems. */
bool config_parse(const char *json, size_t len, config_t *out, problems_t *problems);
void config_free(config_t *c);
void problems_free(problems_t *p);
bool list_contains(const string_list_t *list, slice_t s);

/* (name, kind, default as JSON, description) of each setting, for describe(). */
typedef struct {
    const char *name;
    const char *kind;
    const char *default_value;
    const char *description;
} setting_doc_t;
extern const setting_doc_t SETTINGS_DOC[];
extern const size_t SETTINGS_DOC_COUNT;

#endif
