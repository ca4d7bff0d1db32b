/*
 * keelson_plugin.h -- the keelson plugin C ABI, version 1.
 *
 * A plugin is a shared library exporting one symbol, keelson_plugin_v1, that returns a pointer to a
 * KeelsonPluginDescriptor with static storage duration. The host checks magic, abi_version and
 * struct_size before it calls anything. Every entry point returns KEELSON_OK (0) on success or a
 * non-zero status, and may write a NUL-terminated UTF-8 message into err (at most err_cap bytes,
 * including the NUL). Parameters arrive as a UTF-8 JSON object of strings (open, validate) or, to a
 * type that sets open2/validate2, as a KeelsonParams: the same JSON plus the pairs as an array of C
 * strings sorted by key (read one with keelson_param), declared defaults filled in. A type may
 * declare its parameters (KeelsonParamSpec) and its own poll/timeout defaults in the extended
 * KeelsonResourceType; the host then refuses parameters that do not match before it calls the
 * plugin, naming the parameter. Calls into one resource never overlap; they may block
 * (online/offline up to PendingTimeout; looks_alive must be cheap), but every call is timed and a
 * call past its DeadlockTimeout gets the host process killed.
 *
 * This header must match crates/abi/src/lib.rs exactly; tests/t02_abi_header.rs checks the layout.
 */
#ifndef KEELSON_PLUGIN_H
#define KEELSON_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KEELSON_PLUGIN_MAGIC 0x4B454C53u /* "KELS" */
#define KEELSON_ABI_VERSION 1u
#define KEELSON_PLUGIN_SYMBOL "keelson_plugin_v1"

#define KEELSON_OK 0
#define KEELSON_ERROR 1
#define KEELSON_PANIC 2
#define KEELSON_INVALID 3

/* issue 11: failure reports and status codes */
/* The configuration is wrong (OCF ERR_CONFIGURED): never restarted, the resource goes Failed at
 * once with the message (no retry) and stays so until an administrator brings it online again. */
#define KEELSON_MISCONFIGURED 4
/* This node cannot run it (something it needs is not installed here): not retried on this node;
 * in a cluster its group fails over at once, on a single node it stays Failed. */
#define KEELSON_NOT_INSTALLED 5
/* From looks_alive/is_alive: the resource is cleanly down (stopped, not broken). A health failure
 * logged as "not running"; the restart policy applies. */
#define KEELSON_NOT_RUNNING 6
/* Any other non-zero code is treated as KEELSON_ERROR, with a log line naming the code. */

#define KEELSON_LOG_ERR 0u
#define KEELSON_LOG_WARN 1u
#define KEELSON_LOG_INFO 2u
#define KEELSON_LOG_DBG 3u

/* Marks the one symbol a plugin exports, also under -fvisibility=hidden. */
#if defined(__GNUC__) || defined(__clang__)
#define KEELSON_EXPORT __attribute__((visibility("default")))
#else
#define KEELSON_EXPORT
#endif

/* Callbacks into the host, valid from open until close returns, callable from any thread of the
 * plugin. Pass ctx back unchanged. */
typedef struct KeelsonHost {
    void *ctx;
    void (*log)(void *ctx, uint32_t level, const char *msg);
    void (*set_status)(void *ctx, uint32_t progress);
    /* issue 11: failure reports and status codes */
    /* The resource failed (msg says why): the node treats it at once as a failed is_alive, without
     * waiting for the next poll. Call it from any thread, at any time from open until close returns
     * (one report counts until the next health verdict; more are dropped). Appended last: every host
     * speaking this ABI sets it, but check it is not NULL before calling it. */
    void (*report_failure)(void *ctx, const char *msg);
    /* This node's name, or NULL. Valid until close returns. */
    const char *node_name;
    /* The resource's name as the cluster log shows it, or NULL. Valid until close returns. */
    const char *resource_name;
    /* The resource's own directory on this node (<data-dir>/resources/<id>/, mode 0700), made before
     * open and kept across host restarts and re-hosting: for a pid file, a log, a lease record.
     * NULL when the host gives none. Valid until close returns. */
    const char *state_dir;
} KeelsonHost;

typedef int32_t (*keelson_open_fn)(const char *params_json, const KeelsonHost *host,
                                   void **out_handle, char *err, size_t err_cap);
typedef int32_t (*keelson_call_fn)(void *handle, char *err, size_t err_cap);
typedef void (*keelson_close_fn)(void *handle);
typedef int32_t (*keelson_validate_fn)(const char *params_json, char *err, size_t err_cap);

/* One parameter: key and value, NUL-terminated UTF-8, valid for the call. */
typedef struct KeelsonParam {
    const char *key;
    const char *value;
} KeelsonParam;

/* A resource's parameters (declared defaults filled in): the JSON object, and the same pairs sorted
 * by key. Valid for the call only: copy what you keep. */
typedef struct KeelsonParams {
    const char *json;
    const KeelsonParam *items;
    size_t count;
} KeelsonParams;

/* The value of parameter key, or NULL when it is not set (and has no declared default). */
static inline const char *keelson_param(const KeelsonParams *p, const char *key) {
    if (p == NULL || key == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < p->count; i++) {
        if (p->items[i].key != NULL && strcmp(p->items[i].key, key) == 0) {
            return p->items[i].value;
        }
    }
    return NULL;
}

typedef int32_t (*keelson_open2_fn)(const KeelsonParams *params, const KeelsonHost *host,
                                    void **out_handle, char *err, size_t err_cap);
typedef int32_t (*keelson_validate2_fn)(const KeelsonParams *params, char *err, size_t err_cap);

/* Parameter kinds. Values always travel as strings; the kind says which strings are valid. */
#define KEELSON_PARAM_STRING 0u
#define KEELSON_PARAM_INTEGER 1u /* decimal, within min..max when HAS_MIN / HAS_MAX */
#define KEELSON_PARAM_BOOLEAN 2u /* true/false, 1/0, yes/no */
#define KEELSON_PARAM_ENUM 3u    /* one of options */
#define KEELSON_PARAM_PATH 4u    /* an absolute path */
#define KEELSON_PARAM_ADDRESS 5u /* an IPv4 or IPv6 address */

/* Parameter flags. */
#define KEELSON_PARAM_REQUIRED 1u /* a resource must set it (unless it has a default) */
#define KEELSON_PARAM_SECRET 2u   /* never echoed, logged or audited in clear */
#define KEELSON_PARAM_HAS_MIN 4u
#define KEELSON_PARAM_HAS_MAX 8u

/* The most parameters one type may declare, and options one enum may list. */
#define KEELSON_MAX_PARAMS 256u

/* One declared parameter; every string with static storage. */
typedef struct KeelsonParamSpec {
    const char *name;                /* required, unique within the type */
    const char *description;         /* one line; may be NULL */
    const char *default_value;       /* given when the resource sets none; NULL for none */
    const char *const *options;      /* KEELSON_PARAM_ENUM: option_count values */
    int64_t min;                     /* with KEELSON_PARAM_HAS_MIN */
    int64_t max;                     /* with KEELSON_PARAM_HAS_MAX */
    uint32_t kind;                   /* KEELSON_PARAM_STRING ... */
    uint32_t flags;                  /* KEELSON_PARAM_REQUIRED | ... */
    uint32_t option_count;
    uint32_t reserved;               /* 0 */
} KeelsonParamSpec;

/* A type's own defaults for the resource properties of the same names; 0 = not set. */
typedef struct KeelsonTypeDefaults {
    uint64_t looks_alive_poll_interval_ms;
    uint64_t is_alive_poll_interval_ms;
    uint64_t pending_timeout_ms;
    uint64_t deadlock_timeout_ms;
} KeelsonTypeDefaults;

/* type_flags: params lists every parameter the type takes; the host refuses any other. */
#define KEELSON_TYPE_DECLARES_PARAMS 1u

/* One resource type. Every function but validate, open2 and validate2 is required, except that
 * open2 may stand in for open. The first nine fields are the original ABI-1 table (still loaded,
 * told apart by type_struct_size); the rest may be left zero. */
typedef struct KeelsonResourceType {
    const char *name;
    keelson_open_fn open;
    keelson_call_fn online;
    keelson_call_fn offline;
    keelson_call_fn looks_alive;
    keelson_call_fn is_alive;
    keelson_call_fn terminate;
    keelson_close_fn close;
    keelson_validate_fn validate;     /* may be NULL */
    keelson_open2_fn open2;           /* called instead of open when set */
    keelson_validate2_fn validate2;   /* called instead of validate when set */
    const KeelsonParamSpec *params;   /* param_count entries; NULL when 0 */
    uint32_t param_count;             /* at most KEELSON_MAX_PARAMS */
    uint32_t param_struct_size;       /* sizeof(KeelsonParamSpec) */
    uint32_t type_flags;              /* KEELSON_TYPE_DECLARES_PARAMS or 0 */
    uint32_t reserved;                /* 0 */
    KeelsonTypeDefaults defaults;
} KeelsonResourceType;

typedef struct KeelsonPluginDescriptor {
    uint32_t magic;            /* KEELSON_PLUGIN_MAGIC */
    uint32_t abi_version;      /* KEELSON_ABI_VERSION */
    uint32_t struct_size;      /* sizeof(KeelsonPluginDescriptor) */
    uint32_t type_count;       /* entries in types, 1..256 */
    const char *plugin_name;
    const KeelsonResourceType *types;
    uint32_t type_struct_size; /* sizeof(KeelsonResourceType) */
    uint32_t reserved;         /* 0 */
} KeelsonPluginDescriptor;

/* The one symbol a plugin exports. */
KEELSON_EXPORT const KeelsonPluginDescriptor *keelson_plugin_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* KEELSON_PLUGIN_H */
