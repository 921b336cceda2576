/* Native tests of the detection logic and the settings parser (no Wasm):
 *   cc -std=c11 -Wall -Werror -Isrc src/shell.c src/json.c src/strbuf.c src/config.c \
 *      tests/test_shell.c -o /tmp/test_shell && /tmp/test_shell
 * (`build.sh --test` does exactly this.) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "shell.h"

static int failures;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                      \
        }                                                                    \
    } while (0)

static slice_t shells[SHELL_MAX_ARGS];
static size_t shells_count;

static shell_match_t classify(const char *command) {
    argv_t argv;
    argv_split(slice_cstr(command), &argv);
    return shell_classify(&argv, shells, shells_count);
}

static int same(slice_t s, const char *want) { return slice_eq_cstr(s, want); }

static void test_docker_commands(void) {
    shell_match_t m = classify("sh");
    CHECK(m.kind == SHELL_INTERACTIVE && same(m.shell, "sh"));
    m = classify("/bin/bash -i");
    CHECK(m.kind == SHELL_INTERACTIVE && same(m.shell, "bash"));
    m = classify("bash --login");
    CHECK(m.kind == SHELL_INTERACTIVE);
    m = classify("/bin/sh -c id; cat /etc/shadow");
    CHECK(m.kind == SHELL_COMMAND && same(m.shell, "sh") && same(m.command, "id; cat /etc/shadow"));
    m = classify("bash -ec curl http://x | sh");
    CHECK(m.kind == SHELL_COMMAND && same(m.command, "curl http://x | sh"));
    m = classify("dash /tmp/run.sh");
    CHECK(m.kind == SHELL_COMMAND && same(m.command, "/tmp/run.sh"));
    m = classify("busybox ash");
    CHECK(m.kind == SHELL_INTERACTIVE && same(m.shell, "ash"));
    m = classify("/usr/bin/env -i TERM=xterm zsh");
    CHECK(m.kind == SHELL_INTERACTIVE && same(m.shell, "zsh"));
    m = classify("bash -o pipefail");
    CHECK(m.kind == SHELL_INTERACTIVE);
    /* Not shells. */
    CHECK(classify("nginx -s reload").kind == SHELL_NONE);
    CHECK(classify("cat /bin/sh").kind == SHELL_NONE);
    CHECK(classify("shellcheck x.sh").kind == SHELL_NONE);
    CHECK(classify("").kind == SHELL_NONE);
    CHECK(classify("env").kind == SHELL_NONE);
}

static void test_exec_uri(void) {
    char buf[512];
    argv_t argv;
    slice_t container;
    bool tty;
    const char *uri =
        "/api/v1/namespaces/default/pods/nginx-deployment-7998647bdf-phvq7/exec?command=bash&container=nginx1&container=nginx1&stdin=true&stdout=true&tty=true";
    CHECK(argv_from_exec_uri(slice_cstr(uri), buf, sizeof buf, &argv, &container, &tty));
    CHECK(argv.count == 1 && same(argv.arg[0], "bash") && same(container, "nginx1") && tty);
    shell_match_t m = shell_classify(&argv, shells, shells_count);
    CHECK(m.kind == SHELL_INTERACTIVE);

    uri = "/api/v1/namespaces/shop/pods/web-1/exec?command=%2Fbin%2Fsh&command=-c&command=cat+%2Fetc%2Fpasswd&container=web&stdout=true";
    CHECK(argv_from_exec_uri(slice_cstr(uri), buf, sizeof buf, &argv, &container, &tty));
    CHECK(argv.count == 3 && same(argv.arg[0], "/bin/sh") && same(argv.arg[2], "cat /etc/passwd") && !tty);
    m = shell_classify(&argv, shells, shells_count);
    CHECK(m.kind == SHELL_COMMAND && same(m.command, "cat /etc/passwd"));

    uri = "/api/v1/namespaces/shop/pods/web-1/exec?command=ls&container=web";
    CHECK(argv_from_exec_uri(slice_cstr(uri), buf, sizeof buf, &argv, &container, &tty));
    CHECK(shell_classify(&argv, shells, shells_count).kind == SHELL_NONE);

    CHECK(!argv_from_exec_uri(slice_cstr("/api/v1/namespaces/a/pods/b/exec"), buf, sizeof buf, &argv, &container, &tty));
    CHECK(!argv_from_exec_uri(slice_cstr("/x?container=a"), buf, sizeof buf, &argv, &container, &tty));
    /* A truncated escape is kept as is; a tiny buffer truncates, never overflows. */
    CHECK(argv_from_exec_uri(slice_cstr("/x?command=a%2"), buf, sizeof buf, &argv, &container, &tty));
    CHECK(same(argv.arg[0], "a%2"));
    char tiny[4];
    CHECK(argv_from_exec_uri(slice_cstr("/x?command=abcdefgh&command=sh"), tiny, sizeof tiny, &argv, &container, &tty));
    CHECK(argv.arg[0].len <= sizeof tiny);
}

static void test_settings(void) {
    config_t c;
    problems_t ps = {0};
    CHECK(config_parse("{}", 2, &c, &ps));
    CHECK(c.shells.count == SHELL_DEFAULTS_COUNT && !c.interactive_only);
    config_free(&c);

    const char *good = "{\"shells\": [\"sh\", \"b\\u0061sh\"], \"interactive_only\": true, \"ignored_users\": [\"ci\"]}";
    CHECK(config_parse(good, strlen(good), &c, &ps));
    CHECK(c.shells.count == 2 && same(c.shells.items[1], "bash") && c.interactive_only);
    CHECK(list_contains(&c.ignored_users, slice_cstr("ci")));
    config_free(&c);

    const char *bad = "{\"shells\": [\"\", 3, \"/bin/sh\"], \"interactive_only\": \"yes\", \"colour\": 1}";
    CHECK(!config_parse(bad, strlen(bad), &c, &ps));
    CHECK(ps.count == 5);
    if (ps.count == 5) {
        CHECK(same(ps.items[0].path, "shells[0]"));
        CHECK(same(ps.items[1].path, "shells[1]"));
        CHECK(same(ps.items[2].path, "shells[2]"));
        CHECK(same(ps.items[3].path, "interactive_only"));
        CHECK(same(ps.items[4].path, "colour"));
    }
    problems_free(&ps);

    const char *broken[] = {"", "[", "{\"a\":}", "{\"a\":1,}", "\"\\x\"", "{} x", "[1,2"};
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) {
        CHECK(!config_parse(broken[i], strlen(broken[i]), &c, &ps));
        CHECK(ps.count == 1 && ps.items[0].path.len == 0);
        problems_free(&ps);
    }
    /* Deep nesting is refused, not a stack overflow. */
    char deep[4001];
    memset(deep, '[', 4000);
    deep[4000] = 0;
    CHECK(!config_parse(deep, 4000, &c, &ps));
    problems_free(&ps);
}

int main(void) {
    for (size_t i = 0; i < SHELL_DEFAULTS_COUNT; i++) shells[shells_count++] = slice_cstr(SHELL_DEFAULTS[i]);
    test_docker_commands();
    test_exec_uri();
    test_settings();
    if (failures) {
        fprintf(stderr, "%d check(s) failed\n", failures);
        return 1;
    }
    printf("ok: shell-exec native tests passed\n");
    return 0;
}
