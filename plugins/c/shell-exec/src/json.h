/* A small JSON reader for the plugin's settings: parses a document into a
 * tree (malloc'd; free with json_free). No stdio, so the component imports
 * nothing but the vigil:detector world. */
#ifndef SHELL_EXEC_JSON_H
#define SHELL_EXEC_JSON_H

#include <stdbool.h>
#include <stddef.h>

typedef enum { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT } json_type_t;

typedef struct json_value json_value_t;

/* A member of an object. */
typedef struct {
    char *key;
    size_t key_len;
    json_value_t *value;
} json_member_t;

struct json_value {
    json_type_t type;
    bool boolean;
    /* JSON_STRING: the decoded UTF-8 text (not NUL-terminated); JSON_NUMBER: its source text. */
    char *str;
    size_t len;
    /* JSON_ARRAY: items[count]; JSON_OBJECT: members[count]. */
    json_value_t **items;
    json_member_t *members;
    size_t count;
};

/* Parses `text`; NULL on a syntax error, with a static description in *error. */
json_value_t *json_parse(const char *text, size_t len, const char **error);
void json_free(json_value_t *v);

#endif
