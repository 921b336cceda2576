/* A small recursive-descent JSON parser (see json.h). Depth is bounded so
 * that hostile settings cannot exhaust the stack. */
#include "json.h"

#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

typedef struct {
    const char *p;
    const char *end;
    const char *error;
} parser_t;

static void skip_ws(parser_t *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static json_value_t *new_value(json_type_t t) {
    json_value_t *v = calloc(1, sizeof *v);
    if (v) v->type = t;
    return v;
}

static bool literal(parser_t *ps, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0) return false;
    ps->p += n;
    return true;
}

static int hex4(const char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= c - '0';
        else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
        else return -1;
    }
    return v;
}

static size_t put_utf8(char *out, unsigned cp) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Parses a string at ps->p (on its opening quote) into a malloc'd buffer. */
static bool parse_string(parser_t *ps, char **out, size_t *out_len) {
    ps->p++; /* opening quote */
    /* The decoded text is never longer than the source. */
    const char *start = ps->p;
    while (ps->p < ps->end && *ps->p != '"') ps->p += (*ps->p == '\\' && ps->end - ps->p > 1) ? 2 : 1;
    if (ps->p >= ps->end) {
        ps->error = "unterminated string";
        return false;
    }
    size_t cap = (size_t)(ps->p - start);
    char *buf = malloc(cap + 1);
    if (!buf) {
        ps->error = "out of memory";
        return false;
    }
    size_t n = 0;
    for (const char *s = start; s < ps->p; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20) {
            free(buf);
            ps->error = "control character in string";
            return false;
        }
        if (c != '\\') {
            buf[n++] = (char)c;
            continue;
        }
        s++;
        switch (*s) {
        case '"': buf[n++] = '"'; break;
        case '\\': buf[n++] = '\\'; break;
        case '/': buf[n++] = '/'; break;
        case 'b': buf[n++] = '\b'; break;
        case 'f': buf[n++] = '\f'; break;
        case 'n': buf[n++] = '\n'; break;
        case 'r': buf[n++] = '\r'; break;
        case 't': buf[n++] = '\t'; break;
        case 'u': {
            int cp = ps->p - s >= 5 ? hex4(s + 1) : -1;
            if (cp < 0) {
                free(buf);
                ps->error = "invalid \\u escape";
                return false;
            }
            s += 4;
            unsigned code = (unsigned)cp;
            if (code >= 0xD800 && code < 0xDC00 && ps->p - s >= 7 && s[1] == '\\' && s[2] == 'u') {
                int lo = hex4(s + 3);
                if (lo >= 0xDC00 && lo < 0xE000) {
                    code = 0x10000 + ((code - 0xD800) << 10) + ((unsigned)lo - 0xDC00);
                    s += 6;
                }
            }
            /* \uXXXX (6 source bytes) never decodes to more than 4 bytes,
             * nor a surrogate pair (12 bytes) to more than 4. */
            n += put_utf8(buf + n, code);
            break;
        }
        default:
            free(buf);
            ps->error = "invalid escape in string";
            return false;
        }
    }
    ps->p++; /* closing quote */
    *out = buf;
    *out_len = n;
    return true;
}

static json_value_t *parse_value(parser_t *ps, int depth);

static json_value_t *parse_array(parser_t *ps, int depth) {
    json_value_t *v = new_value(JSON_ARRAY);
    if (!v) return NULL;
    ps->p++; /* [ */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        return v;
    }
    size_t cap = 0;
    for (;;) {
        json_value_t *item = parse_value(ps, depth + 1);
        if (!item) goto fail;
        if (v->count == cap) {
            cap = cap ? cap * 2 : 4;
            json_value_t **grown = realloc(v->items, cap * sizeof *grown);
            if (!grown) {
                json_free(item);
                ps->error = "out of memory";
                goto fail;
            }
            v->items = grown;
        }
        v->items[v->count++] = item;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == ']') {
            ps->p++;
            return v;
        }
        ps->error = "expected ',' or ']' in array";
        goto fail;
    }
fail:
    json_free(v);
    return NULL;
}

static json_value_t *parse_object(parser_t *ps, int depth) {
    json_value_t *v = new_value(JSON_OBJECT);
    if (!v) return NULL;
    ps->p++; /* { */
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == '}') {
        ps->p++;
        return v;
    }
    size_t cap = 0;
    for (;;) {
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != '"') {
            ps->error = "expected a string key in object";
            goto fail;
        }
        char *key;
        size_t key_len;
        if (!parse_string(ps, &key, &key_len)) goto fail;
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ':') {
            free(key);
            ps->error = "expected ':' after key";
            goto fail;
        }
        ps->p++;
        json_value_t *item = parse_value(ps, depth + 1);
        if (!item) {
            free(key);
            goto fail;
        }
        if (v->count == cap) {
            cap = cap ? cap * 2 : 4;
            json_member_t *grown = realloc(v->members, cap * sizeof *grown);
            if (!grown) {
                free(key);
                json_free(item);
                ps->error = "out of memory";
                goto fail;
            }
            v->members = grown;
        }
        v->members[v->count].key = key;
        v->members[v->count].key_len = key_len;
        v->members[v->count].value = item;
        v->count++;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == '}') {
            ps->p++;
            return v;
        }
        ps->error = "expected ',' or '}' in object";
        goto fail;
    }
fail:
    json_free(v);
    return NULL;
}

static json_value_t *parse_value(parser_t *ps, int depth) {
    if (depth > MAX_DEPTH) {
        ps->error = "nested too deeply";
        return NULL;
    }
    skip_ws(ps);
    if (ps->p >= ps->end) {
        ps->error = "unexpected end of input";
        return NULL;
    }
    char c = *ps->p;
    if (c == '{') return parse_object(ps, depth);
    if (c == '[') return parse_array(ps, depth);
    if (c == '"') {
        json_value_t *v = new_value(JSON_STRING);
        if (!v) return NULL;
        if (!parse_string(ps, &v->str, &v->len)) {
            free(v);
            return NULL;
        }
        return v;
    }
    if (literal(ps, "true") || literal(ps, "false")) {
        json_value_t *v = new_value(JSON_BOOL);
        if (v) v->boolean = ps->p[-1] == 'e' && ps->p[-2] == 'u';
        return v;
    }
    if (literal(ps, "null")) return new_value(JSON_NULL);
    if (c == '-' || (c >= '0' && c <= '9')) {
        const char *start = ps->p;
        while (ps->p < ps->end && (strchr("+-.eE", *ps->p) || (*ps->p >= '0' && *ps->p <= '9'))) ps->p++;
        json_value_t *v = new_value(JSON_NUMBER);
        if (!v) return NULL;
        v->len = (size_t)(ps->p - start);
        v->str = malloc(v->len + 1);
        if (!v->str) {
            free(v);
            return NULL;
        }
        memcpy(v->str, start, v->len);
        return v;
    }
    ps->error = "unexpected character";
    return NULL;
}

json_value_t *json_parse(const char *text, size_t len, const char **error) {
    parser_t ps = {text, text + len, NULL};
    json_value_t *v = parse_value(&ps, 0);
    if (v) {
        skip_ws(&ps);
        if (ps.p != ps.end) {
            json_free(v);
            v = NULL;
            ps.error = "trailing characters after the document";
        }
    }
    if (!v && error) *error = ps.error ? ps.error : "out of memory";
    return v;
}

void json_free(json_value_t *v) {
    if (!v) return;
    free(v->str);
    for (size_t i = 0; v->type == JSON_ARRAY && i < v->count; i++) json_free(v->items[i]);
    for (size_t i = 0; v->type == JSON_OBJECT && i < v->count; i++) {
        free(v->members[i].key);
        json_free(v->members[i].value);
    }
    free(v->items);
    free(v->members);
    free(v);
}
