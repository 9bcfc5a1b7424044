/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Re-adoption: <run>/vms/<vmid>/state.json lets a restarted zvmd take over
 * a VM that outlived the previous one. It is an intent record: written
 * before the helper and QEMU are spawned (`starting`), again as each pid
 * appears, and when a stop is asked (`stop_requested`), so a zvmd killed at
 * any point finds what it left: a QEMU to adopt, a helper without QEMU to
 * end, a stop to carry on. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "cid-alloc.h"
#include "console.h"
#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "loop.h"
#include "macro.h"
#include "process.h"
#include "process-scan.h"
#include "qemu-argv.h"
#include "string-util.h"
#include "time-util.h"
#include "vm.h"
#include "vm-internal.h"
#include "vm-state-record.h"


#define ADOPT_STOP_TIMEOUT_S 30U

int vm_state_file_save(Vm *vm) {
        _cleanup_free_ char *text = NULL;
        /* Formatted by pure/vm-state-record (issue 14: fuzzed there). */
        VmStateRecord rec = {
                .pid = vm->pid,
                .starttime = vm->starttime,
                .helper_pid = vm->helper.pid,
                .helper_starttime = vm->helper.starttime,
                .passt_pid = vm->passt.pid,
                .passt_starttime = vm->passt.starttime,
                .kvm = vm->accel == VM_ACCEL_KVM,
                .started_usec = vm->started_usec,
                .balloon_target_mib = vm->balloon_target_mib,
                .balloon_manual = vm->balloon_manual,
                .starting = vm->state == VM_STATE_STARTING,
                .stop_requested = vm->stop_requested,
                .pool_slot = vm->pool_slot,
                .from_pool = vm->from_pool,
                .naming = vm->naming != VM_NAMING_NONE,
        };

        text = vm_state_record_format(&rec);
        if (!text)
                return -ENOMEM;
        return write_file_replace(vm->run_dir, "state.json", text, strlen(text), 0600);
}
void vm_state_file_remove(Vm *vm) {
        _cleanup_free_ char *p = vm_run_path(vm, "state.json");

        if (p)
                (void) unlink(p);
}
/* Issue 14: a zvmd killed between spawning the helper or QEMU and
 * recording its pid left it running, named nowhere but by its working
 * directory, the run dir. */
static void kill_unrecorded(Vm *vm) {
        _cleanup_free_ char *dir = realpath(vm->run_dir, NULL);
        /* Ended below, by their pidfds. An unrecorded passt ends by itself:
         * its peer, QEMU's end of the socket pair, died with zvmd. */
        pid_t keep[] = { vm->helper.pid, vm->passt.pid };
        int r;

        r = dir ? process_kill_by_cwd(dir, keep, ELEMENTSOF(keep)) : -errno;
        if (r > 0)
                log_warning("VM %u: killed %d process(es) of the interrupted start", vm->vmid, r);
        else if (r < 0)
                log_warning_errno(r, "VM %u: cannot look for processes of the interrupted start: %m", vm->vmid);
}

static int on_adopted_exit(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        loop_note("VM %s: QEMU exited", ((Vm *) userdata)->config->name);
        vm_handle_exit(userdata, -1, 0);
        return 0;
}
int vm_adopt(Vm *vm) {
        _cleanup_free_ char *path = vm_run_path(vm, "state.json"), *text = NULL;
        VmStateRecord rec;
        size_t len = 0;
        bool starting = false, stopping = false, claimed;
        int r;

        if (!path)
                return -ENOMEM;
        /* Parsed by pure/vm-state-record (issue 14: fuzzed there); an
         * unreadable or torn record is no run to adopt. */
        if (read_full_file(path, &text, &len, VM_STATE_RECORD_MAX) < 0 || vm_state_record_parse(text, len, &rec) < 0)
                return 0;               /* not running */
        vm->pid = rec.pid;
        vm->starttime = rec.starttime;
        vm->started_usec = rec.started_usec;
        vm->balloon_target_mib = rec.balloon_target_mib;
        vm->balloon_manual = rec.balloon_manual;
        starting = rec.starting;
        stopping = rec.stop_requested;
        vm->accel = rec.kvm ? VM_ACCEL_KVM : VM_ACCEL_TCG;
        vm->from_pool = rec.from_pool;
        /* Claimed, but zvmd was killed before the guest took the VM's
         * name and keys: it takes them now (manager_load()). */
        vm->naming = rec.from_pool && rec.naming ? VM_NAMING_PENDING : VM_NAMING_NONE;
        /* A claimed pool guest (vm_pool_claim()): finish the claim first,
         * then it is this VM's run like any other. */
        vm->pool_slot = rec.pool_slot;
        claimed = rec.pool_slot > 0 && rec.pool_slot != vm->vmid && !rec.from_pool && !vm->pool;
        if (claimed && vm->pid > 0) {
                r = vm_pool_finish(vm, rec.pool_slot);
                if (r < 0)
                        log_warning_errno(r, "VM %u: the claim of pool guest %u is not complete: %m", vm->vmid,
                                          rec.pool_slot);
        }
        (void) vm_running_load(vm);     /* before anything below uses the run's CID, taps, agent */

        vm_helper_adopt(&vm->helper, rec.helper_pid, rec.helper_starttime);
        vm_helper_adopt(&vm->passt, rec.passt_pid, rec.passt_starttime);

        if (vm->pid <= 0 && starting) {
                /* zvmd went away before QEMU was spawned: end what the start
                 * made (the helper, taps, sockets) and leave the VM stopped. */
                log_warning("VM %u (%s): zvmd exited while the VM was starting; cleaning up", vm->vmid,
                            vm->config->name);
                kill_unrecorded(vm);
                vm_cleanup_runtime(vm);
                vm->crash_reason = strdup("zvmd exited while the VM was starting");
                return 0;
        }
        vm->stop_requested = stopping;
        r = vm->pid > 0 ? pidfd_open_checked(vm->pid, vm->starttime, &vm->pidfd) : -ESRCH;
        if (r < 0 && r != -ESRCH && r != -ENOENT) {
                /* Out of fds or memory: QEMU may well run on. Nothing of
                 * its run is touched, and the VM counts as running, so no
                 * second QEMU starts on its layer; a restarted zvmd
                 * adopts it. The caller reports it. */
                vm->state = VM_STATE_RUNNING;
                return log_warning_errno(r, "VM %u (%s): cannot watch QEMU (pid %d): %m", vm->vmid,
                                         vm->config->name, (int) vm->pid);
        }
        if (r < 0) {
                log_warning("VM %u (%s): QEMU (pid %d) exited while zvmd was not running", vm->vmid,
                            vm->config->name, (int) vm->pid);
                vm->state = VM_STATE_RUNNING;   /* so the transition below is reported */
                vm_handle_exit(vm, -1, 0);
                return 0;
        }
        /* Our own child after all when this zvmd started it as a pool
         * guest: then the loop reaps it and learns its exit status. */
        vm->own_child = process_is_child(vm->pid);
        r = vm->own_child ? sd_event_add_child_pidfd(vm->ctx->event, &vm->pid_source, vm->pidfd, WEXITED,
                                                     vm_on_qemu_child, vm)
                          : sd_event_add_io(vm->ctx->event, &vm->pid_source, vm->pidfd, EPOLLIN, on_adopted_exit, vm);
        if (r < 0)
                return r;
        vm->state = VM_STATE_RUNNING;
        if (claimed)
                (void) vm_state_file_save(vm);  /* the claim is done: from_pool, naming */
        r = vm_qmp_connect(vm);
        if (r < 0)
                log_warning_errno(r, "VM %u: re-adopted, but QMP is unreachable: %m", vm->vmid);
        r = console_open(vm->ctx->event, vm->vmid, vm->run_dir, vm->ctx->console_log_max, &vm->console);
        if (r < 0)
                log_warning_errno(r, "VM %u: re-adopted, but its serial console cannot be relayed: %m", vm->vmid);
        r = agent_readopt(&vm->agent, vm_running_config(vm)->agent, vm_running_config(vm)->cid);
        if (r < 0)
                log_warning_errno(r, "VM %u: re-adopted, but the agent cannot be reached: %m", vm->vmid);
        log_info("VM %u (%s): re-adopted QEMU pid %d", vm->vmid, vm->config->name, (int) vm->pid);
        if (stopping) {
                /* A stop was in flight: carry it on (ACPI, then a kill at the
                 * timeout), so the VM ends stopped, not crashed. */
                vm->stop_requested = false;
                r = vm_shutdown(vm, ADOPT_STOP_TIMEOUT_S);
                if (r < 0)
                        log_warning_errno(r, "VM %u: cannot carry on its stop: %m", vm->vmid);
        }
        return 0;
}
