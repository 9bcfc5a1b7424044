/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <string.h>

#include "api.h"
#include "macro.h"

static const char *const vm_state_table[_VM_STATE_MAX] = {
        [VM_STATE_STOPPED] = "stopped",
        [VM_STATE_STARTING] = "starting",
        [VM_STATE_RUNNING] = "running",
        [VM_STATE_STOPPING] = "stopping",
        [VM_STATE_CRASHED] = "crashed",
};

static const struct {
        const char *name;
        unsigned status;
} api_error_table[_API_ERROR_MAX] = {
        [API_ERROR_BAD_REQUEST] = { "BadRequest", 400 },
        [API_ERROR_INVALID_JSON] = { "InvalidJson", 400 },
        [API_ERROR_UNKNOWN_KEY] = { "UnknownKey", 400 },
        [API_ERROR_INVALID_VALUE] = { "InvalidValue", 400 },
        [API_ERROR_UNAUTHORIZED] = { "Unauthorized", 401 },
        [API_ERROR_FORBIDDEN] = { "Forbidden", 403 },
        [API_ERROR_NOT_FOUND] = { "NotFound", 404 },
        [API_ERROR_METHOD_NOT_ALLOWED] = { "MethodNotAllowed", 405 },
        [API_ERROR_CONFLICT] = { "Conflict", 409 },
        [API_ERROR_NAME_TAKEN] = { "NameTaken", 409 },
        [API_ERROR_VMID_TAKEN] = { "VmidTaken", 409 },
        [API_ERROR_INVALID_STATE] = { "InvalidState", 409 },
        [API_ERROR_PAYLOAD_TOO_LARGE] = { "PayloadTooLarge", 413 },
        [API_ERROR_INTERNAL] = { "Internal", 500 },
        [API_ERROR_QEMU_FAILED] = { "QemuFailed", 500 },
        [API_ERROR_UNAVAILABLE] = { "Unavailable", 503 },
        [API_ERROR_INSUFFICIENT_STORAGE] = { "InsufficientStorage", 507 },
};

const char *vm_state_to_string(VmState s) {
        if (s < 0 || s >= _VM_STATE_MAX)
                return NULL;
        return vm_state_table[s];
}

VmState vm_state_from_string(const char *s) {
        if (!s)
                return _VM_STATE_INVALID;
        for (int i = 0; i < _VM_STATE_MAX; i++)
                if (streq(vm_state_table[i], s))
                        return (VmState) i;
        return _VM_STATE_INVALID;
}

const char *api_error_to_string(ApiError e) {
        if (e < 0 || e >= _API_ERROR_MAX)
                return NULL;
        return api_error_table[e].name;
}

ApiError api_error_from_string(const char *s) {
        if (!s)
                return _API_ERROR_INVALID;
        for (int i = 0; i < _API_ERROR_MAX; i++)
                if (streq(api_error_table[i].name, s))
                        return (ApiError) i;
        return _API_ERROR_INVALID;
}

unsigned api_error_http_status(ApiError e) {
        if (e < 0 || e >= _API_ERROR_MAX)
                return 500;
        return api_error_table[e].status;
}
