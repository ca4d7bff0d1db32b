/*
 * marker.c -- the C example of docs/plugins.md: a keelson resource plugin in plain C that uses only
 * include/keelson_plugin.h. Type "marker-c": while online, a file at `path` holds `text`. Online
 * writes it (and leaves an identical one alone, so a second online disrupts nothing), offline
 * removes it (a missing file is already offline), looks_alive checks that it exists (one stat),
 * is_alive that it holds the text. The parameters are declared in PARAMS, so the host refuses an
 * unknown name, a missing `path`, a relative path or a `max_bytes` outside 1..4096 before this code
 * runs, and fills in the defaults; open2/validate2 read them with keelson_param (no JSON reader)
 * and add the one rule the table cannot say: the text fits in max_bytes.
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

/* ---- parameters: declared here, checked and defaulted by the host ---- */

static const KeelsonParamSpec PARAMS[] = {
    {
        .name = "path",
        .kind = KEELSON_PARAM_PATH,
        .flags = KEELSON_PARAM_REQUIRED,
        .description = "the marker file, written while online",
    },
    {
        .name = "text",
        .kind = KEELSON_PARAM_STRING,
        .default_value = "keelson",
        .description = "what the marker file holds",
    },
    {
        .name = "max_bytes",
        .kind = KEELSON_PARAM_INTEGER,
        .flags = KEELSON_PARAM_HAS_MIN | KEELSON_PARAM_HAS_MAX,
        .min = 1,
        .max = 4096,
        .default_value = "256",
        .description = "the longest text accepted",
    },
};

/* Copies one parameter into out (cap bytes with the NUL); KEELSON_INVALID if it is missing or
 * longer. The host has checked its kind already; this only guards the buffer. */
static int32_t copy_param(const KeelsonParams *params, const char *key, char *out, size_t cap,
                          char *err, size_t err_cap) {
    const char *value = keelson_param(params, key);
    if (value == NULL) {
        set_error(err, err_cap, "%s: required", key);
        return KEELSON_INVALID;
    }
    if (strlen(value) >= cap) {
        set_error(err, err_cap, "%s: too long", key);
        return KEELSON_INVALID;
    }
    memcpy(out, value, strlen(value) + 1);
    return KEELSON_OK;
}

/* Reads every parameter; shared by validate2 and open2. */
static int32_t parse_config(const KeelsonParams *params, Config *c, char *err, size_t cap) {
    int32_t status = copy_param(params, "path", c->path, sizeof c->path, err, cap);
    if (status == KEELSON_OK) {
        status = copy_param(params, "text", c->text, sizeof c->text, err, cap);
    }
    if (status != KEELSON_OK) {
        return status;
    }
    const char *max_bytes = keelson_param(params, "max_bytes"); /* 1..4096, defaulted */
    if (max_bytes != NULL && strlen(c->text) > strtoul(max_bytes, NULL, 10)) {
        set_error(err, cap, "text: longer than max_bytes %s", max_bytes);
        return KEELSON_MISCONFIGURED;
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

static int32_t marker_validate2(const KeelsonParams *params, char *err, size_t cap) {
    Config scratch; /* on the stack: calls on different resources may run at once */
    return parse_config(params, &scratch, err, cap);
}

static int32_t marker_open2(const KeelsonParams *params, const KeelsonHost *host, void **out,
                            char *err, size_t cap) {
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
        return errno == ENOENT ? KEELSON_NOT_RUNNING : KEELSON_ERROR;
    }
    return KEELSON_OK;
}

static int32_t marker_is_alive(void *handle, char *err, size_t cap) {
    Marker *m = checked(handle, err, cap);
    struct stat st;
    if (m == NULL) {
        return KEELSON_ERROR;
    }
    if (stat(m->config.path, &st) != 0 && errno == ENOENT) {
        set_error(err, cap, "%s is missing", m->config.path);
        return KEELSON_NOT_RUNNING;
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
    .open2 = marker_open2,
    .online = marker_online,
    .offline = marker_offline,
    .looks_alive = marker_looks_alive,
    .is_alive = marker_is_alive,
    .terminate = marker_offline, /* offline is already immediate */
    .close = marker_close,
    .validate2 = marker_validate2,
    .params = PARAMS,
    .param_count = sizeof PARAMS / sizeof PARAMS[0],
    .param_struct_size = sizeof(KeelsonParamSpec),
    .type_flags = KEELSON_TYPE_DECLARES_PARAMS,
    .defaults = {.pending_timeout_ms = 10000}, /* writing a file takes milliseconds */
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
