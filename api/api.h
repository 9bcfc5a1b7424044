/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Names and enums of the wire contract (openapi.yaml), shared by zvmd, zvm
 * and the agent so that a state or error name is spelled in one place. */

#include <errno.h>

#define ZVM_VMID_MIN 100U
#define ZVM_VMID_MAX 999999999U
#define ZVM_API_PREFIX "/api/v1"

typedef enum VmState {
        VM_STATE_STOPPED,
        VM_STATE_STARTING,
        VM_STATE_RUNNING,
        VM_STATE_STOPPING,
        VM_STATE_CRASHED,
        _VM_STATE_MAX,
        _VM_STATE_INVALID = -EINVAL,
} VmState;

const char *vm_state_to_string(VmState s);
VmState vm_state_from_string(const char *s);

typedef enum ApiError {
        API_ERROR_BAD_REQUEST,          /* 400 */
        API_ERROR_INVALID_JSON,         /* 400 */
        API_ERROR_UNKNOWN_KEY,          /* 400 */
        API_ERROR_INVALID_VALUE,        /* 400 */
        API_ERROR_UNAUTHORIZED,         /* 401 */
        API_ERROR_FORBIDDEN,            /* 403: authenticated, but the role does not allow it */
        API_ERROR_NOT_FOUND,            /* 404 */
        API_ERROR_METHOD_NOT_ALLOWED,   /* 405 */
        API_ERROR_CONFLICT,             /* 409 */
        API_ERROR_NAME_TAKEN,           /* 409 */
        API_ERROR_VMID_TAKEN,           /* 409 */
        API_ERROR_INVALID_STATE,        /* 409 */
        API_ERROR_PAYLOAD_TOO_LARGE,    /* 413 */
        API_ERROR_INTERNAL,             /* 500 */
        API_ERROR_QEMU_FAILED,          /* 500 */
        API_ERROR_UNAVAILABLE,          /* 503 */
        API_ERROR_INSUFFICIENT_STORAGE, /* 507 */
        _API_ERROR_MAX,
        _API_ERROR_INVALID = -EINVAL,
} ApiError;

const char *api_error_to_string(ApiError e);
ApiError api_error_from_string(const char *s);
unsigned api_error_http_status(ApiError e);
