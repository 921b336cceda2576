/* {{name}}: a Vigil detector plugin in C (scaffolded by `vigil plugin new`).
 *
 * The sample rule reports exec sessions started in a container with
 * `--privileged` (`docker exec --privileged`): the command runs with every
 * capability and device of the host. Replace it with your own logic.
 *
 * The exports are the `exports_detector_*` functions; `wit-bindgen c`
 * generates detector.h/detector.c from wit/ when build.sh runs.
 *
 * Rules of the C bindings:
 * - an export owns its arguments: free them (detector_list_event_free …);
 * - what an export returns is freed by the generated post-return code with
 *   free(): every string and list you return must be malloc'd (dup_cstr),
 *   never a string literal;
 * - stay off stdio (printf, snprintf): wasi-libc's stdio imports WASI, and
 *   the host refuses a plugin that imports anything but vigil:detector. Log
 *   with vigil_detector_log_log().
 */
#include <stdlib.h>
#include <string.h>

#include "detector.h"
#include "json.h"

#define NAME "{{name}}"

/* ---- helpers ------------------------------------------------------------ */

/* A malloc'd copy of n bytes (what the post-return code frees). */
static detector_string_t dup_n(const void *p, size_t n) {
    detector_string_t out = {NULL, 0};
    if (n == 0 || !(out.ptr = malloc(n))) return out;
    memcpy(out.ptr, p, n);
    out.len = n;
    return out;
}

static detector_string_t dup_cstr(const char *s) { return dup_n(s, strlen(s)); }
static detector_string_t dup_str(const detector_string_t *s) { return dup_n(s->ptr, s->len); }

/* Concatenates up to four strings into a malloc'd one. */
static detector_string_t concat4(detector_string_t a, detector_string_t b, detector_string_t c,
                                 detector_string_t d) {
    detector_string_t parts[4] = {a, b, c, d};
    size_t n = a.len + b.len + c.len + d.len, at = 0;
    detector_string_t out = {malloc(n ? n : 1), n};
    if (!out.ptr) {
        out.len = 0;
        return out;
    }
    for (int i = 0; i < 4; i++) {
        if (parts[i].len) memcpy(out.ptr + at, parts[i].ptr, parts[i].len);
        at += parts[i].len;
    }
    return out;
}

static detector_string_t lit(const char *s) {
    detector_string_t out = {(uint8_t *)s, strlen(s)};
    return out;
}

static void log_info(const char *message) {
    detector_string_t msg = lit(message);
    vigil_detector_log_list_key_value_t fields = {NULL, 0};
    vigil_detector_log_log(VIGIL_DETECTOR_LOG_LEVEL_INFO, &msg, &fields);
}

/* ---- settings ----------------------------------------------------------- */

/* Container names whose privileged execs are not reported (owned). */
static detector_string_t *ignored;
static size_t ignored_count;

/* Adds a problem at `path` (+ `[index]` when index >= 0). */
static void add_problem(detector_config_error_t *err, const char *path, size_t path_len, long index,
                        const char *message) {
    vigil_detector_types_config_problem_t *grown =
        realloc(err->problems.ptr, (err->problems.len + 1) * sizeof *grown);
    if (!grown) return;
    err->problems.ptr = grown;
    char digits[24];
    size_t d = sizeof digits;
    if (index >= 0) {
        digits[--d] = ']';
        do {
            digits[--d] = (char)('0' + index % 10);
            index /= 10;
        } while (index);
        digits[--d] = '[';
    }
    err->problems.ptr[err->problems.len].path =
        concat4(lit(""), lit(""), (detector_string_t){(uint8_t *)path, path_len},
                (detector_string_t){(uint8_t *)digits + d, sizeof digits - d});
    err->problems.ptr[err->problems.len].message = dup_cstr(message);
    err->problems.len++;
}

/* ---- the exports -------------------------------------------------------- */

void exports_detector_describe(detector_plugin_info_t *ret) {
    ret->name = dup_cstr(NAME);
    ret->version = dup_cstr("0.1.0");
    ret->description = dup_cstr("Exec sessions started with --privileged in a container.");
    ret->subscribes.ptr = malloc(sizeof(vigil_detector_types_event_kind_t));
    ret->subscribes.len = ret->subscribes.ptr ? 1 : 0;
    if (ret->subscribes.ptr) ret->subscribes.ptr[0] = VIGIL_DETECTOR_TYPES_EVENT_KIND_CONTAINER;
    ret->settings.ptr = malloc(sizeof(vigil_detector_types_setting_info_t));
    ret->settings.len = ret->settings.ptr ? 1 : 0;
    if (ret->settings.ptr) {
        ret->settings.ptr[0].name = dup_cstr("ignored_containers");
        ret->settings.ptr[0].kind = dup_cstr("list of strings");
        ret->settings.ptr[0].default_value = dup_cstr("[]");
        ret->settings.ptr[0].description = dup_cstr("Container names whose privileged execs are not reported.");
    }
}

bool exports_detector_configure(detector_string_t *settings, detector_config_error_t *err) {
    err->problems.ptr = NULL;
    err->problems.len = 0;
    const char *syntax = NULL;
    json_value_t *doc = json_parse((const char *)settings->ptr, settings->len, &syntax);
    detector_string_free(settings);
    if (!doc) {
        add_problem(err, "", 0, -1, syntax);
        return false;
    }
    detector_string_t *names = NULL;
    size_t count = 0;
    if (doc->type != JSON_OBJECT) add_problem(err, "", 0, -1, "must be a JSON object");
    for (size_t i = 0; doc->type == JSON_OBJECT && i < doc->count; i++) {
        json_member_t *m = &doc->members[i];
        if (m->key_len != strlen("ignored_containers") || memcmp(m->key, "ignored_containers", m->key_len) != 0) {
            add_problem(err, m->key, m->key_len, -1, "unknown setting (known: ignored_containers)");
            continue;
        }
        if (m->value->type != JSON_ARRAY) {
            add_problem(err, m->key, m->key_len, -1, "must be a list of strings");
            continue;
        }
        for (size_t j = 0; j < m->value->count; j++) {
            json_value_t *item = m->value->items[j];
            if (item->type != JSON_STRING || item->len == 0) {
                add_problem(err, m->key, m->key_len, (long)j, "must be a non-empty string");
                continue;
            }
            detector_string_t *grown = realloc(names, (count + 1) * sizeof *grown);
            if (!grown) continue;
            names = grown;
            names[count++] = dup_n(item->str, item->len);
        }
    }
    json_free(doc);
    if (err->problems.len) {
        for (size_t i = 0; i < count; i++) detector_string_free(&names[i]);
        free(names);
        return false;
    }
    for (size_t i = 0; i < ignored_count; i++) detector_string_free(&ignored[i]);
    free(ignored);
    ignored = names;
    ignored_count = count;
    log_info("configured");
    return true;
}

void exports_detector_on_events(detector_list_event_t *batch, detector_list_finding_t *ret) {
    ret->ptr = NULL;
    ret->len = 0;
    for (size_t i = 0; i < batch->len; i++) {
        const vigil_detector_types_event_t *event = &batch->ptr[i];
        if (event->body.tag != VIGIL_DETECTOR_TYPES_EVENT_BODY_CONTAINER) continue;
        const vigil_detector_types_container_event_t *c = &event->body.val.container;
        if (c->action != VIGIL_DETECTOR_TYPES_CONTAINER_ACTION_EXEC_START || !c->exec.is_some ||
            !c->exec.val.privileged)
            continue;
        bool skip = false;
        for (size_t j = 0; j < ignored_count; j++)
            if (ignored[j].len == c->name.len && memcmp(ignored[j].ptr, c->name.ptr, c->name.len) == 0) skip = true;
        if (skip) continue;

        vigil_detector_types_finding_t *grown = realloc(ret->ptr, (ret->len + 1) * sizeof *grown);
        if (!grown) break;
        ret->ptr = grown;
        vigil_detector_types_finding_t *f = &ret->ptr[ret->len++];
        memset(f, 0, sizeof *f);
        f->rule_id = dup_cstr(NAME "/privileged-exec");
        f->title = dup_cstr("Privileged exec in a container");
        f->severity = VIGIL_DETECTOR_TYPES_SEVERITY_HIGH;
        f->summary = concat4(lit("`"), c->exec.val.command, lit("` was run with --privileged in container "), c->name);
        f->techniques.ptr = malloc(sizeof(detector_string_t));
        if (f->techniques.ptr) {
            f->techniques.ptr[0] = dup_cstr("T1609");
            f->techniques.len = 1;
        }
        f->entities.ptr = malloc(2 * sizeof(vigil_detector_types_entity_t));
        if (f->entities.ptr) {
            f->entities.ptr[0].kind = VIGIL_DETECTOR_TYPES_ENTITY_KIND_CONTAINER;
            f->entities.ptr[0].id = dup_str(&c->id);
            f->entities.ptr[0].name = dup_str(&c->name);
            f->entities.ptr[1].kind = VIGIL_DETECTOR_TYPES_ENTITY_KIND_IMAGE;
            f->entities.ptr[1].id = dup_str(&c->image);
            f->entities.ptr[1].name = dup_cstr("");
            f->entities.len = 2;
        }
        f->evidence.ptr = malloc(3 * sizeof(vigil_detector_types_key_value_t));
        if (f->evidence.ptr) {
            f->evidence.ptr[0].key = dup_cstr("command");
            f->evidence.ptr[0].value = dup_str(&c->exec.val.command);
            f->evidence.ptr[1].key = dup_cstr("user");
            f->evidence.ptr[1].value = dup_str(&c->exec.val.user);
            f->evidence.ptr[2].key = dup_cstr("privileged");
            f->evidence.ptr[2].value = dup_cstr("true");
            f->evidence.len = 3;
        }
        f->event_ids.ptr = malloc(sizeof(detector_string_t));
        if (f->event_ids.ptr) {
            f->event_ids.ptr[0] = dup_str(&event->id);
            f->event_ids.len = 1;
        }
    }
    detector_list_event_free(batch);
}

void exports_detector_on_tick(detector_timestamp_t now, detector_list_finding_t *ret) {
    (void)now;
    ret->ptr = NULL;
    ret->len = 0;
}
