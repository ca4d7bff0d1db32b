/*
 * c_example.c -- a keelson resource plugin in plain C (ABI v1, include/keelson_plugin.h).
 *
 * Type "c-example": an in-memory resource. open allocates its state, online/offline flip a flag,
 * looks_alive/is_alive succeed while the state is consistent, terminate forces offline, close frees.
 * validate accepts any JSON object and refuses anything else (an empty string counts as {}, as in
 * the Rust SDK). Parameters are otherwise ignored.
 */
#include "keelson_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define C_EXAMPLE_MAGIC 0xC0FFEEu

typedef struct CExample {
    uint32_t magic;   /* guards against a stale or foreign handle */
    int online;
    uint64_t checks;
    KeelsonHost host;
} CExample;

static void set_error(char *err, size_t cap, const char *msg) {
    if (err != NULL && cap > 0) {
        snprintf(err, cap, "%s", msg);
    }
}

static void log_line(const CExample *r, uint32_t level, const char *msg) {
    if (r->host.log != NULL) {
        r->host.log(r->host.ctx, level, msg);
    }
}

/* A JSON object starts with '{' after optional whitespace. */
static int is_json_object(const char *params) {
    if (params == NULL) {
        return 1;
    }
    while (*params == ' ' || *params == '\t' || *params == '\n' || *params == '\r') {
        params++;
    }
    return *params == '\0' || *params == '{';
}

static CExample *checked(void *handle, char *err, size_t cap) {
    CExample *r = (CExample *)handle;
    if (r == NULL || r->magic != C_EXAMPLE_MAGIC) {
        set_error(err, cap, "c-example: invalid resource handle");
        return NULL;
    }
    return r;
}

static int32_t ce_validate(const char *params, char *err, size_t cap) {
    if (!is_json_object(params)) {
        set_error(err, cap, "c-example: parameters must be a JSON object");
        return KEELSON_INVALID;
    }
    return KEELSON_OK;
}

static int32_t ce_open(const char *params, const KeelsonHost *host, void **out, char *err, size_t cap) {
    int32_t status = ce_validate(params, err, cap);
    if (status != KEELSON_OK) {
        return status;
    }
    CExample *r = calloc(1, sizeof *r);
    if (r == NULL) {
        set_error(err, cap, "c-example: out of memory");
        return KEELSON_ERROR;
    }
    r->magic = C_EXAMPLE_MAGIC;
    if (host != NULL) {
        r->host = *host;
    }
    *out = r;
    return KEELSON_OK;
}

static int32_t ce_online(void *handle, char *err, size_t cap) {
    CExample *r = checked(handle, err, cap);
    if (r == NULL) {
        return KEELSON_ERROR;
    }
    if (r->host.set_status != NULL) {
        r->host.set_status(r->host.ctx, 100);
    }
    r->online = 1;
    log_line(r, KEELSON_LOG_INFO, "c-example resource online");
    return KEELSON_OK;
}

static int32_t ce_offline(void *handle, char *err, size_t cap) {
    CExample *r = checked(handle, err, cap);
    if (r == NULL) {
        return KEELSON_ERROR;
    }
    r->online = 0;
    log_line(r, KEELSON_LOG_INFO, "c-example resource offline");
    return KEELSON_OK;
}

static int32_t ce_check(void *handle, char *err, size_t cap) {
    CExample *r = checked(handle, err, cap);
    if (r == NULL) {
        return KEELSON_ERROR;
    }
    r->checks++;
    return KEELSON_OK;
}

static int32_t ce_terminate(void *handle, char *err, size_t cap) {
    CExample *r = checked(handle, err, cap);
    if (r == NULL) {
        return KEELSON_ERROR;
    }
    r->online = 0;
    return KEELSON_OK;
}

static void ce_close(void *handle) {
    CExample *r = (CExample *)handle;
    if (r != NULL && r->magic == C_EXAMPLE_MAGIC) {
        r->magic = 0;
        free(r);
    }
}

static const KeelsonResourceType TYPES[] = {{
    .name = "c-example",
    .open = ce_open,
    .online = ce_online,
    .offline = ce_offline,
    .looks_alive = ce_check,
    .is_alive = ce_check,
    .terminate = ce_terminate,
    .close = ce_close,
    .validate = ce_validate,
}};

static const KeelsonPluginDescriptor DESCRIPTOR = {
    .magic = KEELSON_PLUGIN_MAGIC,
    .abi_version = KEELSON_ABI_VERSION,
    .struct_size = sizeof(KeelsonPluginDescriptor),
    .type_count = sizeof TYPES / sizeof TYPES[0],
    .plugin_name = "c-example",
    .types = TYPES,
    .type_struct_size = sizeof(KeelsonResourceType),
    .reserved = 0,
};

const KeelsonPluginDescriptor *keelson_plugin_v1(void) {
    return &DESCRIPTOR;
}
