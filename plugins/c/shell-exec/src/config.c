/* Settings (see config.h). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "strbuf.h"

const setting_doc_t SETTINGS_DOC[] = {
    {"shells", "list of strings", "[\"sh\",\"bash\",\"ash\",\"dash\",\"zsh\",\"ksh\",\"mksh\",\"csh\",\"tcsh\",\"fish\"]",
     "Programs counted as shells, compared with the base name of the exec'd program (`/bin/sh` is `sh`)."},
    {"interactive_only", "boolean", "false",
     "Report only interactive shells, not `sh -c …` commands or shell scripts."},
    {"ignored_namespaces", "list of strings", "[]", "Kubernetes namespaces whose execs are not reported."},
    {"ignored_users", "list of strings", "[]",
     "Kubernetes users (`system:serviceaccount:ci:runner`) whose execs are not reported."},
};
const size_t SETTINGS_DOC_COUNT = sizeof(SETTINGS_DOC) / sizeof(SETTINGS_DOC[0]);

static slice_t owned_copy(const char *p, size_t n) {
    char *buf = malloc(n ? n : 1);
    if (buf && n) memcpy(buf, p, n);
    slice_t out = {buf ? buf : "", buf ? n : 0};
    return out;
}

static void list_push(string_list_t *l, const char *p, size_t n) {
    slice_t *grown = realloc(l->items, (l->count + 1) * sizeof *grown);
    if (!grown) return;
    l->items = grown;
    l->items[l->count++] = owned_copy(p, n);
}

static void list_free(string_list_t *l) {
    for (size_t i = 0; i < l->count; i++) free((void *)l->items[i].ptr);
    free(l->items);
    l->items = NULL;
    l->count = 0;
}

bool list_contains(const string_list_t *list, slice_t s) {
    for (size_t i = 0; i < list->count; i++)
        if (slice_eq(list->items[i], s)) return true;
    return false;
}

void config_defaults(config_t *out) {
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < SHELL_DEFAULTS_COUNT; i++)
        list_push(&out->shells, SHELL_DEFAULTS[i], strlen(SHELL_DEFAULTS[i]));
}

void config_free(config_t *c) {
    list_free(&c->shells);
    list_free(&c->ignored_namespaces);
    list_free(&c->ignored_users);
}

static void problem(problems_t *ps, slice_t path, const char *message) {
    problem_t *grown = realloc(ps->items, (ps->count + 1) * sizeof *grown);
    if (!grown) return;
    ps->items = grown;
    ps->items[ps->count].path = owned_copy(path.ptr, path.len);
    ps->items[ps->count].message = owned_copy(message, strlen(message));
    ps->count++;
}

void problems_free(problems_t *p) {
    for (size_t i = 0; i < p->count; i++) {
        free((void *)p->items[i].path.ptr);
        free((void *)p->items[i].message.ptr);
    }
    free(p->items);
    p->items = NULL;
    p->count = 0;
}

/* `name[i]` as a path. */
static void item_path(strbuf_t *sb, const char *name, size_t i) {
    sb->len = 0;
    sb_cstr(sb, name);
    sb_cstr(sb, "[");
    sb_uint(sb, i);
    sb_cstr(sb, "]");
}

/* Reads a list of non-empty strings into *out (replacing it). */
static void string_list(const json_value_t *v, const char *name, bool no_slash, string_list_t *out,
                        problems_t *ps) {
    if (v->type != JSON_ARRAY) {
        problem(ps, slice_cstr(name), "must be a list of strings");
        return;
    }
    list_free(out);
    strbuf_t path = {0};
    for (size_t i = 0; i < v->count; i++) {
        const json_value_t *item = v->items[i];
        item_path(&path, name, i);
        slice_t p = {path.ptr ? path.ptr : "", path.len};
        if (item->type != JSON_STRING) {
            problem(ps, p, "must be a string");
        } else if (item->len == 0) {
            problem(ps, p, "must not be empty");
        } else if (no_slash && memchr(item->str, '/', item->len)) {
            problem(ps, p, "a program name, without a directory (`sh`, not `/bin/sh`)");
        } else {
            list_push(out, item->str, item->len);
        }
    }
    free(path.ptr);
}

bool config_parse(const char *json, size_t len, config_t *out, problems_t *ps) {
    config_defaults(out);
    const char *error = NULL;
    json_value_t *doc = json_parse(json, len, &error);
    if (!doc) {
        strbuf_t msg = {0};
        sb_cstr(&msg, "not JSON: ");
        sb_cstr(&msg, error);
        char *text = malloc(msg.len + 1);
        if (text) {
            memcpy(text, msg.ptr, msg.len);
            text[msg.len] = 0;
            problem(ps, slice_cstr(""), text);
            free(text);
        }
        free(msg.ptr);
        config_free(out);
        return false;
    }
    if (doc->type != JSON_OBJECT) {
        problem(ps, slice_cstr(""), "must be a JSON object");
    } else {
        for (size_t i = 0; i < doc->count; i++) {
            slice_t key = {doc->members[i].key, doc->members[i].key_len};
            const json_value_t *v = doc->members[i].value;
            if (slice_eq_cstr(key, "shells")) {
                string_list(v, "shells", true, &out->shells, ps);
            } else if (slice_eq_cstr(key, "interactive_only")) {
                if (v->type != JSON_BOOL) problem(ps, key, "must be true or false");
                else out->interactive_only = v->boolean;
            } else if (slice_eq_cstr(key, "ignored_namespaces")) {
                string_list(v, "ignored_namespaces", false, &out->ignored_namespaces, ps);
            } else if (slice_eq_cstr(key, "ignored_users")) {
                string_list(v, "ignored_users", false, &out->ignored_users, ps);
            } else {
                problem(ps, key, "unknown setting (known: ignored_namespaces, ignored_users, interactive_only, shells)");
            }
        }
    }
    json_free(doc);
    if (ps->count) {
        config_free(out);
        return false;
    }
    return true;
}
