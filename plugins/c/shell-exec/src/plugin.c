/* shell-exec: a shell started inside a container, through `docker exec`
 * (exec-create / exec-start events) or `kubectl exec` (`pods/exec` in the
 * Kubernetes audit log, the command in the request URI's `command=`
 * parameters).
 *
 * The component's exports are the `exports_detector_*` functions below;
 * `wit-bindgen c` generates detector.h/detector.c from wit/ at build time.
 *
 * Ownership, as wit-bindgen's C bindings define it: an export owns its
 * arguments (and frees them); what it returns is freed by the generated
 * post-return functions with free(), so every returned string and list is
 * malloc'd, never a literal. The plugin stays off stdio (no snprintf): with
 * wasi-libc, stdio pulls WASI imports into the component, and the host
 * refuses any import but the vigil:detector interfaces.
 */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "detector.h"
#include "shell.h"
#include "strbuf.h"

#define NAME "shell-exec"
#define VERSION "0.1.0"

/* ---- strings ------------------------------------------------------------ */

static slice_t sl(const detector_string_t *s) {
    slice_t out = {(const char *)s->ptr, s->len};
    return out;
}

/* A malloc'd copy (what the post-return functions free). */
static detector_string_t dup_slice(slice_t s) {
    detector_string_t out = {NULL, 0};
    if (s.len == 0) return out;
    out.ptr = malloc(s.len);
    if (!out.ptr) return out;
    memcpy(out.ptr, s.ptr, s.len);
    out.len = s.len;
    return out;
}

static detector_string_t dup_cstr(const char *s) { return dup_slice(slice_cstr(s)); }

static detector_string_t from_sb(strbuf_t *sb) {
    slice_t s = sb_take(sb);
    detector_string_t out = {(uint8_t *)s.ptr, s.ptr ? s.len : 0};
    return out;
}

/* ---- growable lists of the finding's parts ------------------------------ */

typedef struct {
    vigil_detector_types_key_value_t *ptr;
    size_t len, cap;
} kv_vec_t;

/* Adds key=value; empty values are left out, as the other plugins do. */
static void kv_push(kv_vec_t *v, const char *key, slice_t value) {
    if (value.len == 0) return;
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        vigil_detector_types_key_value_t *grown = realloc(v->ptr, cap * sizeof *grown);
        if (!grown) return;
        v->ptr = grown;
        v->cap = cap;
    }
    v->ptr[v->len].key = dup_cstr(key);
    v->ptr[v->len].value = dup_slice(value);
    v->len++;
}

typedef struct {
    vigil_detector_types_entity_t *ptr;
    size_t len, cap;
} entity_vec_t;

static void entity_push(entity_vec_t *v, vigil_detector_types_entity_kind_t kind, slice_t id, slice_t name) {
    if (id.len == 0) return;
    if (v->len == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 4;
        vigil_detector_types_entity_t *grown = realloc(v->ptr, cap * sizeof *grown);
        if (!grown) return;
        v->ptr = grown;
        v->cap = cap;
    }
    v->ptr[v->len].kind = kind;
    v->ptr[v->len].id = dup_slice(id);
    v->ptr[v->len].name = dup_slice(name);
    v->len++;
}

typedef struct {
    vigil_detector_types_finding_t *ptr;
    size_t len, cap;
} finding_vec_t;

static detector_list_string_t string_list2(const char *a, const char *b) {
    detector_list_string_t out = {malloc(2 * sizeof(detector_string_t)), 2};
    if (!out.ptr) {
        out.len = 0;
        return out;
    }
    out.ptr[0] = dup_cstr(a);
    out.ptr[1] = dup_cstr(b);
    return out;
}

static detector_list_string_t string_list1(slice_t a) {
    detector_list_string_t out = {malloc(sizeof(detector_string_t)), 1};
    if (!out.ptr) {
        out.len = 0;
        return out;
    }
    out.ptr[0] = dup_slice(a);
    return out;
}

/* ---- the detector's state ---------------------------------------------- */

static config_t CONFIG;
static bool CONFIGURED;

/* Docker reports one `docker exec` as exec-create then exec-start: the first
 * is reported and remembered here, and the matching exec-start is not
 * reported again. */
#define PENDING 64
static struct {
    slice_t container; /* owned */
    slice_t command;   /* owned */
} pending[PENDING];
static size_t pending_next;

/* Audit ids of reported `pods/exec` requests: a request logged at
 * ResponseStarted and ResponseComplete is one finding. */
#define SEEN_AUDIT_IDS 256
static slice_t seen_audit[SEEN_AUDIT_IDS]; /* owned */
static size_t seen_audit_next;

static slice_t own(slice_t s) {
    char *p = malloc(s.len ? s.len : 1);
    if (!p) {
        slice_t none = {"", 0};
        return none;
    }
    memcpy(p, s.ptr, s.len);
    slice_t out = {p, s.len};
    return out;
}

static void disown(slice_t *s) {
    if (s->len) free((void *)s->ptr);
    s->ptr = "";
    s->len = 0;
}

static const config_t *config(void) {
    if (!CONFIGURED) {
        config_defaults(&CONFIG);
        CONFIGURED = true;
    }
    return &CONFIG;
}

/* ---- logging through the host (the only output a plugin has) ----------- */

static void log_info(const char *message, const char *key, slice_t value) {
    detector_string_t msg = {(uint8_t *)message, strlen(message)};
    vigil_detector_log_key_value_t field = {
        .key = {(uint8_t *)key, strlen(key)},
        .value = {(uint8_t *)value.ptr, value.len},
    };
    vigil_detector_log_list_key_value_t fields = {&field, 1};
    vigil_detector_log_log(VIGIL_DETECTOR_LOG_LEVEL_INFO, &msg, &fields);
}

/* ---- findings ----------------------------------------------------------- */

static void push_finding(finding_vec_t *out, const shell_match_t *m, slice_t summary_where, kv_vec_t *evidence,
                         entity_vec_t *entities, slice_t event_id) {
    if (out->len == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 8;
        vigil_detector_types_finding_t *grown = realloc(out->ptr, cap * sizeof *grown);
        if (!grown) return;
        out->ptr = grown;
        out->cap = cap;
    }
    bool interactive = m->kind == SHELL_INTERACTIVE;
    strbuf_t summary = {0};
    if (interactive) {
        sb_cstr(&summary, "Interactive shell `");
        sb_slice(&summary, m->shell);
        sb_cstr(&summary, "` opened in ");
    } else {
        sb_cstr(&summary, "Shell `");
        sb_slice(&summary, m->shell);
        sb_cstr(&summary, "` ran `");
        sb_slice(&summary, m->command);
        sb_cstr(&summary, "` in ");
    }
    sb_slice(&summary, summary_where);
    sb_cstr(&summary, ".");
    vigil_detector_types_finding_t *f = &out->ptr[out->len++];
    f->rule_id = dup_cstr(interactive ? NAME "/interactive-shell" : NAME "/shell-command");
    f->title = dup_cstr(interactive ? "Interactive shell in a container" : "Shell command run in a container");
    f->severity = interactive ? VIGIL_DETECTOR_TYPES_SEVERITY_HIGH : VIGIL_DETECTOR_TYPES_SEVERITY_MEDIUM;
    f->summary = from_sb(&summary);
    f->techniques = string_list2("T1609", "T1059.004");
    f->entities.ptr = entities->ptr;
    f->entities.len = entities->len;
    f->evidence.ptr = evidence->ptr;
    f->evidence.len = evidence->len;
    f->event_ids = string_list1(event_id);
}

static void shell_evidence(kv_vec_t *ev, const shell_match_t *m, slice_t command) {
    kv_push(ev, "command", command);
    kv_push(ev, "shell", m->shell);
    kv_push(ev, "mode", slice_cstr(m->kind == SHELL_INTERACTIVE ? "interactive" : "command"));
    kv_push(ev, "shell_command", m->command);
}

static slice_t label(const vigil_detector_types_list_key_value_t *labels, const char *key) {
    for (size_t i = 0; i < labels->len; i++)
        if (slice_eq_cstr(sl(&labels->ptr[i].key), key)) return sl(&labels->ptr[i].value);
    slice_t none = {"", 0};
    return none;
}

static void docker_exec(const vigil_detector_types_event_t *event, const vigil_detector_types_container_event_t *c,
                        finding_vec_t *out) {
    bool create = c->action == VIGIL_DETECTOR_TYPES_CONTAINER_ACTION_EXEC_CREATE;
    bool start = c->action == VIGIL_DETECTOR_TYPES_CONTAINER_ACTION_EXEC_START;
    if ((!create && !start) || !c->exec.is_some) return;
    const config_t *cfg = config();
    const vigil_detector_types_exec_info_t *exec = &c->exec.val;
    slice_t command = sl(&exec->command);
    argv_t argv;
    argv_split(command, &argv);
    shell_match_t m = shell_classify(&argv, cfg->shells.items, cfg->shells.count);
    if (m.kind == SHELL_NONE || (cfg->interactive_only && m.kind != SHELL_INTERACTIVE)) return;
    /* A Kubernetes pod's container, seen through Docker: its namespace is a label. */
    slice_t k8s_namespace = label(&c->labels, "io.kubernetes.pod.namespace");
    if (k8s_namespace.len && list_contains(&cfg->ignored_namespaces, k8s_namespace)) return;

    for (size_t i = 0; i < PENDING; i++) {
        if (pending[i].container.len && slice_eq(pending[i].container, sl(&c->id)) &&
            slice_eq(pending[i].command, command)) {
            /* The other half of an exec already reported. */
            disown(&pending[i].container);
            disown(&pending[i].command);
            return;
        }
    }
    disown(&pending[pending_next].container);
    disown(&pending[pending_next].command);
    pending[pending_next].container = own(sl(&c->id));
    pending[pending_next].command = own(command);
    pending_next = (pending_next + 1) % PENDING;

    kv_vec_t ev = {0};
    shell_evidence(&ev, &m, command);
    kv_push(&ev, "container", sl(&c->name));
    kv_push(&ev, "image", sl(&c->image));
    kv_push(&ev, "user", sl(&exec->user));
    kv_push(&ev, "tty", slice_cstr(exec->tty ? "true" : "false"));
    if (exec->privileged) kv_push(&ev, "privileged", slice_cstr("true"));
    kv_push(&ev, "action", slice_cstr(create ? "exec-create" : "exec-start"));
    kv_push(&ev, "namespace", k8s_namespace);
    entity_vec_t ents = {0};
    entity_push(&ents, VIGIL_DETECTOR_TYPES_ENTITY_KIND_CONTAINER, sl(&c->id), sl(&c->name));
    entity_push(&ents, VIGIL_DETECTOR_TYPES_ENTITY_KIND_IMAGE, sl(&c->image), slice_cstr(""));
    entity_push(&ents, VIGIL_DETECTOR_TYPES_ENTITY_KIND_NODE, sl(&event->node), slice_cstr(""));
    strbuf_t where = {0};
    sb_cstr(&where, "container ");
    sb_slice(&where, c->name.len ? sl(&c->name) : sl(&c->id));
    if (c->image.len) {
        sb_cstr(&where, " (image ");
        sb_slice(&where, sl(&c->image));
        sb_cstr(&where, ")");
    }
    sb_cstr(&where, " through docker exec");
    slice_t w = {where.ptr ? where.ptr : "", where.len};
    push_finding(out, &m, w, &ev, &ents, sl(&event->id));
    free(where.ptr);
}

static void k8s_exec(const vigil_detector_types_event_t *event, const vigil_detector_types_kubernetes_event_t *k,
                     finding_vec_t *out) {
    if (!slice_eq_cstr(sl(&k->resource), "pods") || !slice_eq_cstr(sl(&k->subresource), "exec")) return;
    /* RequestReceived is logged before authorisation; a refused request is not an exec. */
    slice_t stage = sl(&k->stage);
    if (slice_eq_cstr(stage, "RequestReceived") || slice_eq_cstr(stage, "Panic")) return;
    if (k->response_code.is_some && k->response_code.val >= 400) return;
    const config_t *cfg = config();
    if (list_contains(&cfg->ignored_namespaces, sl(&k->namespace_)) || list_contains(&cfg->ignored_users, sl(&k->user)))
        return;
    char buf[2048];
    argv_t argv;
    slice_t container;
    bool tty;
    if (!argv_from_exec_uri(sl(&k->request_uri), buf, sizeof buf, &argv, &container, &tty)) return;
    shell_match_t m = shell_classify(&argv, cfg->shells.items, cfg->shells.count);
    if (m.kind == SHELL_NONE || (cfg->interactive_only && m.kind != SHELL_INTERACTIVE)) return;

    slice_t audit_id = sl(&k->audit_id);
    if (audit_id.len) {
        for (size_t i = 0; i < SEEN_AUDIT_IDS; i++)
            if (slice_eq(seen_audit[i], audit_id)) return;
        disown(&seen_audit[seen_audit_next]);
        seen_audit[seen_audit_next] = own(audit_id);
        seen_audit_next = (seen_audit_next + 1) % SEEN_AUDIT_IDS;
    }

    strbuf_t pod = {0};
    sb_slice(&pod, sl(&k->namespace_));
    sb_cstr(&pod, "/");
    sb_slice(&pod, sl(&k->name));
    slice_t pod_id = {pod.ptr ? pod.ptr : "", pod.len};
    strbuf_t ips = {0};
    for (size_t i = 0; i < k->source_ips.len; i++) {
        if (i) sb_cstr(&ips, ", ");
        sb_slice(&ips, sl(&k->source_ips.ptr[i]));
    }
    slice_t command = {"", 0};
    if (argv.count) {
        command.ptr = argv.arg[0].ptr;
        command.len = (size_t)(argv.arg[argv.count - 1].ptr + argv.arg[argv.count - 1].len - argv.arg[0].ptr);
    }
    kv_vec_t ev = {0};
    shell_evidence(&ev, &m, command);
    kv_push(&ev, "pod", pod_id);
    kv_push(&ev, "container", container);
    kv_push(&ev, "namespace", sl(&k->namespace_));
    kv_push(&ev, "user", sl(&k->user));
    kv_push(&ev, "tty", slice_cstr(tty ? "true" : "false"));
    kv_push(&ev, "stage", stage);
    slice_t ip_list = {ips.ptr ? ips.ptr : "", ips.len};
    kv_push(&ev, "source_ips", ip_list);
    entity_vec_t ents = {0};
    entity_push(&ents, VIGIL_DETECTOR_TYPES_ENTITY_KIND_POD, pod_id, slice_cstr(""));
    entity_push(&ents, VIGIL_DETECTOR_TYPES_ENTITY_KIND_USER, sl(&k->user), slice_cstr(""));
    strbuf_t where = {0};
    sb_cstr(&where, "pod ");
    sb_slice(&where, pod_id);
    if (container.len) {
        sb_cstr(&where, " (container ");
        sb_slice(&where, container);
        sb_cstr(&where, ")");
    }
    sb_cstr(&where, " through kubectl exec by ");
    sb_slice(&where, k->user.len ? sl(&k->user) : slice_cstr("an unknown user"));
    slice_t w = {where.ptr ? where.ptr : "", where.len};
    push_finding(out, &m, w, &ev, &ents, sl(&event->id));
    free(where.ptr);
    free(pod.ptr);
    free(ips.ptr);
}

/* ---- the exports -------------------------------------------------------- */

void exports_detector_describe(detector_plugin_info_t *ret) {
    ret->name = dup_cstr(NAME);
    ret->version = dup_cstr(VERSION);
    ret->description = dup_cstr(
        "Shells started inside containers: docker exec (exec-create/exec-start) and kubectl exec "
        "(pods/exec in the audit log) whose command is a shell. Written in C.");
    ret->subscribes.ptr = malloc(2 * sizeof(vigil_detector_types_event_kind_t));
    ret->subscribes.len = ret->subscribes.ptr ? 2 : 0;
    if (ret->subscribes.ptr) {
        ret->subscribes.ptr[0] = VIGIL_DETECTOR_TYPES_EVENT_KIND_CONTAINER;
        ret->subscribes.ptr[1] = VIGIL_DETECTOR_TYPES_EVENT_KIND_KUBERNETES;
    }
    ret->settings.ptr = malloc(SETTINGS_DOC_COUNT * sizeof(vigil_detector_types_setting_info_t));
    ret->settings.len = ret->settings.ptr ? SETTINGS_DOC_COUNT : 0;
    for (size_t i = 0; i < ret->settings.len; i++) {
        ret->settings.ptr[i].name = dup_cstr(SETTINGS_DOC[i].name);
        ret->settings.ptr[i].kind = dup_cstr(SETTINGS_DOC[i].kind);
        ret->settings.ptr[i].default_value = dup_cstr(SETTINGS_DOC[i].default_value);
        ret->settings.ptr[i].description = dup_cstr(SETTINGS_DOC[i].description);
    }
}

bool exports_detector_configure(detector_string_t *settings, detector_config_error_t *err) {
    config_t parsed;
    problems_t problems = {0};
    bool ok = config_parse((const char *)settings->ptr, settings->len, &parsed, &problems);
    detector_string_free(settings);
    if (!ok) {
        err->problems.ptr = malloc(problems.count * sizeof(vigil_detector_types_config_problem_t));
        err->problems.len = err->problems.ptr ? problems.count : 0;
        for (size_t i = 0; i < err->problems.len; i++) {
            err->problems.ptr[i].path = dup_slice(problems.items[i].path);
            err->problems.ptr[i].message = dup_slice(problems.items[i].message);
        }
        problems_free(&problems);
        return false;
    }
    if (CONFIGURED) config_free(&CONFIG);
    CONFIG = parsed;
    CONFIGURED = true;
    strbuf_t shells = {0};
    for (size_t i = 0; i < CONFIG.shells.count; i++) {
        if (i) sb_cstr(&shells, ", ");
        sb_slice(&shells, CONFIG.shells.items[i]);
    }
    slice_t list = {shells.ptr ? shells.ptr : "", shells.len};
    log_info("configured", "shells", list);
    free(shells.ptr);
    return true;
}

void exports_detector_on_events(detector_list_event_t *batch, detector_list_finding_t *ret) {
    finding_vec_t out = {0};
    for (size_t i = 0; i < batch->len; i++) {
        const vigil_detector_types_event_t *event = &batch->ptr[i];
        switch (event->body.tag) {
        case VIGIL_DETECTOR_TYPES_EVENT_BODY_CONTAINER:
            docker_exec(event, &event->body.val.container, &out);
            break;
        case VIGIL_DETECTOR_TYPES_EVENT_BODY_KUBERNETES:
            k8s_exec(event, &event->body.val.kubernetes, &out);
            break;
        default:
            break;
        }
    }
    detector_list_event_free(batch);
    ret->ptr = out.ptr;
    ret->len = out.len;
}

void exports_detector_on_tick(detector_timestamp_t now, detector_list_finding_t *ret) {
    (void)now;
    ret->ptr = NULL;
    ret->len = 0;
}
