/*
 * abi1_legacy.c -- a plugin built against a frozen copy of the original ABI-1 layout (the header as
 * it was before the type table grew: nine pointers per type, parameters as JSON only). It must keep
 * loading and running under every later host. Deliberately self-contained: it does not include
 * keelson_plugin.h, so a change there cannot change what this file was compiled against.
 *
 * Type "c-legacy": open remembers the parameters' JSON text, online logs it, health checks succeed,
 * validate refuses parameters containing "refuse" (so a test sees the plugin's own validate run).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* --- frozen ABI-1 definitions (copied from include/keelson_plugin.h before issue 11) --- */
#define KEELSON_PLUGIN_MAGIC 0x4B454C53u
#define KEELSON_ABI_VERSION 1u
#define KEELSON_OK 0
#define KEELSON_ERROR 1
#define KEELSON_INVALID 3
#define KEELSON_LOG_INFO 2u

typedef struct KeelsonHost {
    void *ctx;
    void (*log)(void *ctx, uint32_t level, const char *msg);
    void (*set_status)(void *ctx, uint32_t progress);
} KeelsonHost;

typedef int32_t (*keelson_open_fn)(const char *params_json, const KeelsonHost *host,
                                   void **out_handle, char *err, size_t err_cap);
typedef int32_t (*keelson_call_fn)(void *handle, char *err, size_t err_cap);
typedef void (*keelson_close_fn)(void *handle);
typedef int32_t (*keelson_validate_fn)(const char *params_json, char *err, size_t err_cap);

typedef struct KeelsonResourceType {
    const char *name;
    keelson_open_fn open;
    keelson_call_fn online;
    keelson_call_fn offline;
    keelson_call_fn looks_alive;
    keelson_call_fn is_alive;
    keelson_call_fn terminate;
    keelson_close_fn close;
    keelson_validate_fn validate;
} KeelsonResourceType;

typedef struct KeelsonPluginDescriptor {
    uint32_t magic;
    uint32_t abi_version;
    uint32_t struct_size;
    uint32_t type_count;
    const char *plugin_name;
    const KeelsonResourceType *types;
    uint32_t type_struct_size;
    uint32_t reserved;
} KeelsonPluginDescriptor;
/* --- end of the frozen definitions --- */

typedef struct Legacy {
    KeelsonHost host;
    char params[256];
} Legacy;

static void set_error(char *err, size_t cap, const char *msg) {
    if (err != NULL && cap > 0) {
        snprintf(err, cap, "%s", msg);
    }
}

static int32_t lg_validate(const char *params, char *err, size_t cap) {
    if (params != NULL && strstr(params, "refuse") != NULL) {
        set_error(err, cap, "c-legacy: the plugin's own validate refuses \"refuse\"");
        return KEELSON_INVALID;
    }
    return KEELSON_OK;
}

static int32_t lg_open(const char *params, const KeelsonHost *host, void **out, char *err,
                       size_t cap) {
    int32_t status = lg_validate(params, err, cap);
    if (status != KEELSON_OK) {
        return status;
    }
    Legacy *r = calloc(1, sizeof *r);
    if (r == NULL) {
        set_error(err, cap, "c-legacy: out of memory");
        return KEELSON_ERROR;
    }
    if (host != NULL) {
        r->host = *host;
    }
    snprintf(r->params, sizeof r->params, "%s", params != NULL ? params : "");
    *out = r;
    return KEELSON_OK;
}

static int32_t lg_online(void *handle, char *err, size_t cap) {
    Legacy *r = handle;
    if (r == NULL) {
        set_error(err, cap, "c-legacy: no handle");
        return KEELSON_ERROR;
    }
    if (r->host.log != NULL) {
        char line[300];
        snprintf(line, sizeof line, "c-legacy online with %s", r->params);
        r->host.log(r->host.ctx, KEELSON_LOG_INFO, line);
    }
    return KEELSON_OK;
}

static int32_t lg_ok(void *handle, char *err, size_t cap) {
    if (handle == NULL) {
        set_error(err, cap, "c-legacy: no handle");
        return KEELSON_ERROR;
    }
    return KEELSON_OK;
}

static void lg_close(void *handle) { free(handle); }

static const KeelsonResourceType TYPES[] = {{
    .name = "c-legacy",
    .open = lg_open,
    .online = lg_online,
    .offline = lg_ok,
    .looks_alive = lg_ok,
    .is_alive = lg_ok,
    .terminate = lg_ok,
    .close = lg_close,
    .validate = lg_validate,
}};

static const KeelsonPluginDescriptor DESCRIPTOR = {
    .magic = KEELSON_PLUGIN_MAGIC,
    .abi_version = KEELSON_ABI_VERSION,
    .struct_size = sizeof(KeelsonPluginDescriptor),
    .type_count = 1,
    .plugin_name = "c-legacy",
    .types = TYPES,
    .type_struct_size = sizeof(KeelsonResourceType),
    .reserved = 0,
};

const KeelsonPluginDescriptor *keelson_plugin_v1(void) { return &DESCRIPTOR; }
