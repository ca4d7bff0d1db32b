/*
 * bad_declaration.c -- a plugin whose declaration is wrong: its type "c-bad-decl" declares the
 * parameter "port" twice. Hosts must refuse the whole plugin at load with one line naming the type
 * and the parameter, and keep running. Its entry points are never supposed to be called.
 */
#include "keelson_plugin.h"

static int32_t bd_open(const char *params, const KeelsonHost *host, void **out, char *err,
                       size_t cap) {
    (void)params, (void)host, (void)out, (void)err, (void)cap;
    return KEELSON_ERROR;
}

static int32_t bd_call(void *handle, char *err, size_t cap) {
    (void)handle, (void)err, (void)cap;
    return KEELSON_ERROR;
}

static void bd_close(void *handle) { (void)handle; }

static const KeelsonParamSpec PARAMS[] = {
    {.name = "port", .kind = KEELSON_PARAM_INTEGER},
    {.name = "port", .kind = KEELSON_PARAM_STRING},
};

static const KeelsonResourceType TYPES[] = {{
    .name = "c-bad-decl",
    .open = bd_open,
    .online = bd_call,
    .offline = bd_call,
    .looks_alive = bd_call,
    .is_alive = bd_call,
    .terminate = bd_call,
    .close = bd_close,
    .params = PARAMS,
    .param_count = 2,
    .param_struct_size = sizeof(KeelsonParamSpec),
    .type_flags = KEELSON_TYPE_DECLARES_PARAMS,
}};

static const KeelsonPluginDescriptor DESCRIPTOR = {
    .magic = KEELSON_PLUGIN_MAGIC,
    .abi_version = KEELSON_ABI_VERSION,
    .struct_size = sizeof(KeelsonPluginDescriptor),
    .type_count = 1,
    .plugin_name = "c-bad-decl",
    .types = TYPES,
    .type_struct_size = sizeof(KeelsonResourceType),
};

KEELSON_EXPORT const KeelsonPluginDescriptor *keelson_plugin_v1(void) { return &DESCRIPTOR; }
