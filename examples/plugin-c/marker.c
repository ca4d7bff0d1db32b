/*
 * marker.c -- the C example of docs/plugins.md: a keelson resource plugin in plain C that uses only
 * include/keelson_plugin.h. Type "marker-c": while online, a file at `path` holds `text`. Online
 * writes it (and leaves an identical one alone, so a second online disrupts nothing), offline
 * removes it (a missing file is already offline), looks_alive checks that it exists (one stat),
 * is_alive that it holds the text. Parameters, all strings: `path` (required, absolute), `text`
 * (default "keelson") and `max_bytes` (an integer 1..4096, default 256: the longest text).
 *
 * Build (one line, from the repository root):
 *   cc -shared -fPIC -fvisibility=hidden -Wall -Wextra -O2 -I include \
 *      -o libkeelson_plugin_marker_c.so examples/plugin-c/marker.c
 */
#include "keelson_plugin.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* With -fvisibility=hidden nothing is exported unless marked. */
#ifndef KEELSON_EXPORT
#define KEELSON_EXPORT __attribute__((visibility("default")))
#endif

#define MARKER_MAGIC 0x4D41524Bu /* "MARK" */
#define MAX_PATH_LEN 4096
#define MAX_TEXT_LEN 4096

typedef struct Config {
    char path[MAX_PATH_LEN + 1];
    char text[MAX_TEXT_LEN + 1];
} Config;

typedef struct Marker {
    uint32_t magic; /* guards against a stale or foreign handle */
    Config config;
    KeelsonHost host;
} Marker;

static void set_error(char *err, size_t cap, const char *fmt, const char *arg) {
    if (err != NULL && cap > 0) {
        snprintf(err, cap, fmt, arg);
    }
}

/* ---- parameters: a flat JSON object whose values are strings ({"path":"/x","text":"hi"}) ---- */

static const char *skip_space(const char *p) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
        p++;
    }
    return p;
}

/* Reads a JSON string at p (which must be '"') into out (cap bytes with the NUL); returns the
 * character after the closing quote, or NULL if it is malformed, too long or has a \u escape
 * outside ASCII. */
static const char *read_string(const char *p, char *out, size_t cap) {
    size_t n = 0;
    if (*p++ != '"') {
        return NULL;
    }
    while (*p != '"') {
        char c = *p++;
        if (c == '\0') {
            return NULL;
        }
        if (c == '\\') {
            char e = *p++;
            switch (e) {
            case '"': case '\\': case '/': c = e; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case 'r': c = '\r'; break;
            case 'b': c = '\b'; break;
            case 'f': c = '\f'; break;
            case 'u': {
                char hex[5] = {0};
                for (int i = 0; i < 4; i++) {
                    if (p[i] == '\0') {
                        return NULL;
                    }
                    hex[i] = p[i];
                }
                char *end = NULL;
                long code = strtol(hex, &end, 16);
                if (end != hex + 4 || code <= 0 || code > 0x7F) {
                    return NULL;
                }
                c = (char)code;
                p += 4;
                break;
            }
            default: return NULL;
            }
        }
        if (n + 1 >= cap) {
            return NULL;
        }
        out[n++] = c;
    }
    out[n] = '\0';
    return p + 1;
}

/* Finds `key` in the JSON object `json` and copies its string value into out; returns 1 if found,
 * 0 if absent, -1 (with err set) if the object is malformed, a value is not a string, or any key is
 * not one of `known`. */
static int param(const char *json, const char *key, char *out, size_t cap, const char *const *known,
                 char *err, size_t err_cap) {
    char name[256];
    char value[MAX_TEXT_LEN + 1];
    int found = 0;
    const char *p = skip_space(json == NULL ? "" : json);
    if (*p == '\0') {
        return 0; /* an empty string counts as {} */
    }
    if (*p++ != '{') {
        set_error(err, err_cap, "parameters must be a JSON object%s", "");
        return -1;
    }
    p = skip_space(p);
    while (*p != '}') {
        p = read_string(p, name, sizeof name);
        if (p == NULL || *(p = skip_space(p)) != ':') {
            set_error(err, err_cap, "parameters: malformed JSON%s", "");
            return -1;
        }
        p = skip_space(p + 1);
        if (*p != '"') {
            set_error(err, err_cap, "parameter %s: the value must be a string", name);
            return -1;
        }
        p = read_string(p, value, sizeof value);
        if (p == NULL) {
            set_error(err, err_cap, "parameter %s: a malformed or too long value", name);
            return -1;
        }
        int is_known = 0;
        for (const char *const *k = known; *k != NULL; k++) {
            is_known |= strcmp(*k, name) == 0;
        }
        if (!is_known) {
            set_error(err, err_cap, "unknown parameter '%s' (known: path, text, max_bytes)", name);
            return -1;
        }
        if (strcmp(name, key) == 0) {
            if (strlen(value) + 1 > cap) {
                set_error(err, err_cap, "parameter %s: too long", name);
                return -1;
            }
            memcpy(out, value, strlen(value) + 1);
            found = 1;
        }
        p = skip_space(p);
        if (*p == ',') {
            p = skip_space(p + 1);
        } else if (*p != '}') {
            set_error(err, err_cap, "parameters: malformed JSON%s", "");
            return -1;
        }
    }
    if (*skip_space(p + 1) != '\0') {
        set_error(err, err_cap, "parameters: text after the object%s", "");
        return -1;
    }
    return found;
}

static const char *const KNOWN[] = {"path", "text", "max_bytes", NULL};

/* Parses and checks every parameter; shared by validate and open. */
static int32_t parse_config(const char *json, Config *c, char *err, size_t cap) {
    char number[32];
    int got = param(json, "path", c->path, sizeof c->path, KNOWN, err, cap);
    if (got < 0) {
        return KEELSON_INVALID;
    }
    if (got == 0) {
        set_error(err, cap, "path: required%s", "");
        return KEELSON_INVALID;
    }
    if (c->path[0] != '/') {
        set_error(err, cap, "path '%s': not an absolute path", c->path);
        return KEELSON_INVALID;
    }
    got = param(json, "text", c->text, sizeof c->text, KNOWN, err, cap);
    if (got < 0) {
        return KEELSON_INVALID;
    }
    if (got == 0) {
        strcpy(c->text, "keelson");
    }
    long max_bytes = 256;
    got = param(json, "max_bytes", number, sizeof number, KNOWN, err, cap);
    if (got < 0) {
        return KEELSON_INVALID;
    }
    if (got == 1) {
        char *end = NULL;
        errno = 0;
        max_bytes = strtol(number, &end, 10);
        if (errno != 0 || end == number || *end != '\0' || max_bytes < 1 || max_bytes > 4096) {
            set_error(err, cap, "max_bytes %s: it must be an integer 1..4096", number);
            return KEELSON_INVALID;
        }
    }
    if ((long)strlen(c->text) > max_bytes) {
        set_error(err, cap, "text: longer than max_bytes%s", "");
        return KEELSON_INVALID;
    }
    return KEELSON_OK;
}

/* ---- the entry points ---- */

static Marker *checked(void *handle, char *err, size_t cap) {
    Marker *m = (Marker *)handle;
    if (m == NULL || m->magic != MARKER_MAGIC) {
        set_error(err, cap, "marker-c: invalid resource handle%s", "");
        return NULL;
    }
    return m;
}

/* Whether the file holds exactly the text. */
static int holds_text(const Marker *m) {
    char buf[MAX_TEXT_LEN + 2];
    FILE *f = fopen(m->config.path, "rb");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return n == strlen(m->config.text) && memcmp(buf, m->config.text, n) == 0;
}

static int32_t marker_validate(const char *params, char *err, size_t cap) {
    Config scratch; /* on the stack: calls on different resources may run at once */
    return parse_config(params, &scratch, err, cap);
}

static int32_t marker_open(const char *params, const KeelsonHost *host, void **out, char *err,
                           size_t cap) {
    Marker *m = calloc(1, sizeof *m);
    if (m == NULL) {
        set_error(err, cap, "marker-c: out of memory%s", "");
        return KEELSON_ERROR;
    }
    int32_t status = parse_config(params, &m->config, err, cap);
    if (status != KEELSON_OK) {
        free(m);
        return status;
    }
    m->magic = MARKER_MAGIC;
    if (host != NULL) {
        m->host = *host;
    }
    *out = m;
    return KEELSON_OK;
}

static int32_t marker_online(void *handle, char *err, size_t cap) {
    Marker *m = checked(handle, err, cap);
    if (m == NULL) {
        return KEELSON_ERROR;
    }
    if (holds_text(m)) {
        return KEELSON_OK; /* already online: leave it alone */
    }
    if (m->host.set_status != NULL) {
        m->host.set_status(m->host.ctx, 50);
    }
    FILE *f = fopen(m->config.path, "wb");
    if (f == NULL) {
        set_error(err, cap, "cannot write %s", m->config.path);
        return KEELSON_ERROR;
    }
    size_t len = strlen(m->config.text);
    int ok = fwrite(m->config.text, 1, len, f) == len;
    ok &= fclose(f) == 0;
    if (!ok) {
        set_error(err, cap, "cannot write %s", m->config.path);
        return KEELSON_ERROR;
    }
    if (m->host.log != NULL) {
        m->host.log(m->host.ctx, KEELSON_LOG_INFO, "marker-c written");
    }
    return KEELSON_OK;
}

static int32_t marker_offline(void *handle, char *err, size_t cap) {
    Marker *m = checked(handle, err, cap);
    if (m == NULL) {
        return KEELSON_ERROR;
    }
    if (remove(m->config.path) != 0 && errno != ENOENT) {
        set_error(err, cap, "cannot remove %s", m->config.path);
        return KEELSON_ERROR;
    }
    return KEELSON_OK;
}

static int32_t marker_looks_alive(void *handle, char *err, size_t cap) {
    Marker *m = checked(handle, err, cap);
    struct stat st;
    if (m == NULL) {
        return KEELSON_ERROR;
    }
    if (stat(m->config.path, &st) != 0) {
        set_error(err, cap, "%s is missing", m->config.path);
        return KEELSON_ERROR;
    }
    return KEELSON_OK;
}

static int32_t marker_is_alive(void *handle, char *err, size_t cap) {
    Marker *m = checked(handle, err, cap);
    if (m == NULL) {
        return KEELSON_ERROR;
    }
    if (!holds_text(m)) {
        set_error(err, cap, "%s does not hold the marker text", m->config.path);
        return KEELSON_ERROR;
    }
    return KEELSON_OK;
}

static void marker_close(void *handle) {
    Marker *m = (Marker *)handle;
    if (m != NULL && m->magic == MARKER_MAGIC) {
        m->magic = 0;
        free(m);
    }
}

static const KeelsonResourceType TYPES[] = {{
    .name = "marker-c",
    .open = marker_open,
    .online = marker_online,
    .offline = marker_offline,
    .looks_alive = marker_looks_alive,
    .is_alive = marker_is_alive,
    .terminate = marker_offline, /* offline is already immediate */
    .close = marker_close,
    .validate = marker_validate,
}};

static const KeelsonPluginDescriptor DESCRIPTOR = {
    .magic = KEELSON_PLUGIN_MAGIC,
    .abi_version = KEELSON_ABI_VERSION,
    .struct_size = sizeof(KeelsonPluginDescriptor),
    .type_count = sizeof TYPES / sizeof TYPES[0],
    .plugin_name = "marker-c",
    .types = TYPES,
    .type_struct_size = sizeof(KeelsonResourceType),
    .reserved = 0,
};

KEELSON_EXPORT const KeelsonPluginDescriptor *keelson_plugin_v1(void) {
    return &DESCRIPTOR;
}
