/*
 * c_example.c -- a keelson resource plugin in plain C (ABI v1, include/keelson_plugin.h).
 *
 * Type "c-example": an in-memory resource. open allocates its state, online/offline flip a flag,
 * looks_alive/is_alive succeed while the state is consistent, terminate forces offline, close frees.
 * Its parameters are declared in PARAMS, so the host refuses unknown names, bad integers and
 * options outside the enum before this code runs, and fills in the defaults; open2/validate2 read
 * them with keelson_param, without a JSON reader:
 *   message     (string, default "c-example resource online")  logged by online
 *   log_level   (enum info|warn, default info)                  the level of that line
 *   fail_after  (integer 0..1000000, default 0)                 is_alive fails after this many
 *                                                               checks (0: never)
 * validate2 adds a rule of its own: message must not be empty.
 */
#include "keelson_plugin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MESSAGE_MAX 200

#define C_EXAMPLE_MAGIC 0xC0FFEEu

typedef struct CExample {
    uint32_t magic;   /* guards against a stale or foreign handle */
    int online;
    uint64_t checks;
    uint64_t fail_after;
    uint32_t log_level;
    char message[MESSAGE_MAX + 1];
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

static CExample *checked(void *handle, char *err, size_t cap) {
    CExample *r = (CExample *)handle;
    if (r == NULL || r->magic != C_EXAMPLE_MAGIC) {
        set_error(err, cap, "c-example: invalid resource handle");
        return NULL;
    }
    return r;
}

static int32_t ce_validate2(const KeelsonParams *params, char *err, size_t cap) {
    const char *message = keelson_param(params, "message");
    if (message == NULL || message[0] == '\0') {
        set_error(err, cap, "c-example: parameter 'message' must not be empty");
        return KEELSON_INVALID;
    }
    if (strlen(message) > MESSAGE_MAX) {
        set_error(err, cap, "c-example: parameter 'message' is longer than 200 bytes");
        return KEELSON_INVALID;
    }
    return KEELSON_OK;
}

static int32_t ce_open2(const KeelsonParams *params, const KeelsonHost *host, void **out, char *err,
                        size_t cap) {
    int32_t status = ce_validate2(params, err, cap);
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
    /* The host checked the kinds and filled in the defaults; NULL only under a host that did not. */
    const char *fail_after = keelson_param(params, "fail_after");
    r->fail_after = fail_after != NULL ? strtoull(fail_after, NULL, 10) : 0;
    const char *level = keelson_param(params, "log_level");
    r->log_level = level != NULL && strcmp(level, "warn") == 0 ? KEELSON_LOG_WARN : KEELSON_LOG_INFO;
    snprintf(r->message, sizeof r->message, "%s", keelson_param(params, "message"));
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
    log_line(r, r->log_level, r->message);
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

static int32_t ce_looks_alive(void *handle, char *err, size_t cap) {
    CExample *r = checked(handle, err, cap);
    return r == NULL ? KEELSON_ERROR : KEELSON_OK;
}

static int32_t ce_is_alive(void *handle, char *err, size_t cap) {
    CExample *r = checked(handle, err, cap);
    if (r == NULL) {
        return KEELSON_ERROR;
    }
    r->checks++;
    if (r->fail_after != 0 && r->checks > r->fail_after) {
        char why[96];
        snprintf(why, sizeof why, "c-example: is_alive fails after %llu checks (fail_after)",
                 (unsigned long long)r->fail_after);
        set_error(err, cap, why);
        return KEELSON_ERROR;
    }
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

static const char *const LOG_LEVELS[] = {"info", "warn"};

static const KeelsonParamSpec PARAMS[] = {
    {
        .name = "message",
        .kind = KEELSON_PARAM_STRING,
        .default_value = "c-example resource online",
        .description = "the line online writes to the cluster log",
    },
    {
        .name = "log_level",
        .kind = KEELSON_PARAM_ENUM,
        .options = LOG_LEVELS,
        .option_count = sizeof LOG_LEVELS / sizeof LOG_LEVELS[0],
        .default_value = "info",
        .description = "the level of that line",
    },
    {
        .name = "fail_after",
        .kind = KEELSON_PARAM_INTEGER,
        .flags = KEELSON_PARAM_HAS_MIN | KEELSON_PARAM_HAS_MAX,
        .min = 0,
        .max = 1000000,
        .default_value = "0",
        .description = "is_alive fails after this many checks (0: never)",
    },
};

static const KeelsonResourceType TYPES[] = {{
    .name = "c-example",
    .open2 = ce_open2,
    .online = ce_online,
    .offline = ce_offline,
    .looks_alive = ce_looks_alive,
    .is_alive = ce_is_alive,
    .terminate = ce_terminate,
    .close = ce_close,
    .validate2 = ce_validate2,
    .params = PARAMS,
    .param_count = sizeof PARAMS / sizeof PARAMS[0],
    .param_struct_size = sizeof(KeelsonParamSpec),
    .type_flags = KEELSON_TYPE_DECLARES_PARAMS,
    .defaults = {.looks_alive_poll_interval_ms = 2000, .pending_timeout_ms = 10000},
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

KEELSON_EXPORT const KeelsonPluginDescriptor *keelson_plugin_v1(void) {
    return &DESCRIPTOR;
}
