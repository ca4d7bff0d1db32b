/*
 * keelson_plugin.h -- the keelson plugin C ABI, version 1.
 *
 * A plugin is a shared library exporting one symbol, keelson_plugin_v1, that returns a pointer to a
 * KeelsonPluginDescriptor with static storage duration. The host checks magic, abi_version and
 * struct_size before it calls anything. Every entry point returns KEELSON_OK (0) on success or a
 * non-zero status, and may write a NUL-terminated UTF-8 message into err (at most err_cap bytes,
 * including the NUL). Parameters are a UTF-8 JSON object. Calls into one resource never overlap;
 * they may block (online/offline up to PendingTimeout; looks_alive must be cheap), but every call is
 * timed and a call past its DeadlockTimeout gets the host process killed.
 *
 * This header must match crates/abi/src/lib.rs exactly; tests/t02_abi_header.rs checks the layout.
 */
#ifndef KEELSON_PLUGIN_H
#define KEELSON_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

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
} KeelsonHost;

typedef int32_t (*keelson_open_fn)(const char *params_json, const KeelsonHost *host,
                                   void **out_handle, char *err, size_t err_cap);
typedef int32_t (*keelson_call_fn)(void *handle, char *err, size_t err_cap);
typedef void (*keelson_close_fn)(void *handle);
typedef int32_t (*keelson_validate_fn)(const char *params_json, char *err, size_t err_cap);

/* One resource type. Every function but validate is required. */
typedef struct KeelsonResourceType {
    const char *name;
    keelson_open_fn open;
    keelson_call_fn online;
    keelson_call_fn offline;
    keelson_call_fn looks_alive;
    keelson_call_fn is_alive;
    keelson_call_fn terminate;
    keelson_close_fn close;
    keelson_validate_fn validate; /* may be NULL */
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
const KeelsonPluginDescriptor *keelson_plugin_v1(void);

#ifdef __cplusplus
}
#endif

#endif /* KEELSON_PLUGIN_H */
