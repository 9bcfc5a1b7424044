/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Shared between the files of the VM state machine (vm.c, vm-qmp.c,
 * vm-net.c, vm-vsock.c, vm-adopt.c, vm-json.c); nobody else includes it. */

#include <signal.h>

#include "vm.h"

/* <run>/vms/<vmid>/<name>; NULL on OOM. */
char *vm_run_path(const Vm *vm, const char *name);
/* The last n lines of a file. */
char **vm_tail_lines(const char *path, size_t n);
/* QEMU exited: code < 0 when unknown (a re-adopted QEMU is not our child). */
void vm_handle_exit(Vm *vm, int code, int sig);

/* vm-qmp.c */
int vm_qmp_listen(Vm *vm, int *ret_fd);
int vm_qmp_attach(Vm *vm, int fd);
int vm_qmp_connect(Vm *vm);
void vm_qmp_detach(Vm *vm);
/* Takes ownership of args. */
int vm_qmp_invoke(Vm *vm, const char *cmd, json_object *args, qmp_result_fn cb, void *userdata);

/* vm-net.c */
int vm_taps_create(Vm *vm, char **ret_error);
void vm_taps_remove(Vm *vm);

/* vm-vsock.c */
int vm_reserve_cid(Vm *vm, int *ret_fd, char **ret_error);
int vm_spawn_helper(Vm *vm, char **ret_error);
void vm_stop_helper(Vm *vm);
int vm_on_helper_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* vm-running.c: the running config, in memory and in running.conf */
int vm_running_take(Vm *vm, char **ret_error);
/* Re-adoption: running.conf, else (older zvmd) the current config. */
int vm_running_load(Vm *vm);
void vm_running_drop(Vm *vm);

/* vm-adopt.c */
int vm_state_file_save(Vm *vm);
void vm_state_file_remove(Vm *vm);
