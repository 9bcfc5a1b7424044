/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bridged NICs: the persistent taps zvmd makes (and removes) around QEMU.
 * What can be refused is checked at once (the bridge exists; a VLAN tag
 * needs vlan_filtering); the ip/bridge commands themselves run off the
 * loop: vm-start.c runs the planned steps as ProcessJobs, removal is fire
 * and forget. */
#include <errno.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "loop.h"
#include "macro.h"
#include "process-async.h"
#include "string-util.h"
#include "vm.h"
#include "vm-internal.h"

#define IP_TIMEOUT_USEC (10ULL * 1000000ULL)

static void vm_tap_name(const Vm *vm, unsigned n, char buf[static 16]) {
        /* Must match the ifname= qemu-argv gives QEMU. */
        snprintf(buf, 16, "zvm%" PRIu32 "i%u", vm->vmid, n);
}

struct VmTapRemoval {
        Vm *vm;
        ProcessJob *jobs[VM_NETS_MAX];
        unsigned running;
        int then_state;                 /* the VmState to set once all are done, or -1 */
};

static VmTapRemoval *tap_removal_free(VmTapRemoval *t, bool detach) {
        if (!t)
                return NULL;
        for (unsigned n = 0; n < VM_NETS_MAX; n++)
                if (detach)
                        process_job_detach(t->jobs[n]);
                else
                        process_job_free(t->jobs[n]);
        return mfree(t);
}

void vm_taps_removal_detach(Vm *vm) {
        vm->tap_removal = tap_removal_free(vm->tap_removal, true);
}

static void on_tap_removed(ProcessJob *j, int status, const char *output, void *userdata) {
        VmTapRemoval *t = userdata;
        loop_note("VM %s: tap removed", t->vm->config->name);
        Vm *vm = t->vm;
        int state;

        for (unsigned n = 0; n < VM_NETS_MAX; n++)
                if (t->jobs[n] == j)
                        t->jobs[n] = process_job_free(j);
        if (status != 0)
                log_debug("VM %u: removing a tap: %d %s", vm->vmid, status, strempty(output));
        if (--t->running > 0)
                return;
        state = t->then_state;
        vm->tap_removal = tap_removal_free(t, false);
        if (state >= 0)
                vm_set_state(vm, state);
}

/* The taps of the run (vm->running, taken before they are made): a NIC
 * removed from the config while the VM ran still has its tap removed. */
void vm_taps_remove(Vm *vm) {
        const VmConfig *c = vm_running_config(vm);
        VmTapRemoval *t;

        /* A removal still running is left to finish on its own. */
        vm_taps_removal_detach(vm);
        t = calloc(1, sizeof(*t));
        if (!t) {
                log_warning("VM %u: out of memory removing its taps", vm->vmid);
                return;
        }
        *t = (VmTapRemoval) { .vm = vm, .then_state = -1 };
        for (unsigned n = 0; n < VM_NETS_MAX; n++) {
                char tap[16];
                int r;

                if (!c->nets[n].present || !c->nets[n].bridge)
                        continue;
                vm_tap_name(vm, n, tap);
                char *argv[] = { (char *) "ip", (char *) "link", (char *) "del", tap, NULL };
                r = process_job_start(vm->ctx->event, argv, IP_TIMEOUT_USEC, on_tap_removed, t, &t->jobs[n]);
                if (r < 0)
                        log_warning_errno(r, "VM %u: cannot remove tap %s: %m", vm->vmid, tap);
                else
                        t->running++;
        }
        if (t->running == 0) {
                free(t);
                return;
        }
        vm->tap_removal = t;
}

int vm_taps_attach(Vm *vm, const int *tap_fds, char **ret_error) {
        for (unsigned n = 0; n < VM_NETS_MAX; n++) {
                struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR };

                if (tap_fds[n] < 0)
                        continue;
                vm_tap_name(vm, n, ifr.ifr_name);
                if (ioctl(tap_fds[n], TUNSETIFF, &ifr) < 0) {
                        int r = -errno;

                        return set_error(ret_error, "net%u: cannot attach to tap %s: %s", n, ifr.ifr_name,
                                         errno_str(r)), r;
                }
        }
        return 0;
}

void vm_set_state_after_taps(Vm *vm, VmState s) {
        if (vm->tap_removal)
                vm->tap_removal->then_state = s;
        else
                vm_set_state(vm, s);
}

void vm_tap_steps_free(VmTapStep *steps, size_t n) {
        for (size_t i = 0; i < n; i++)
                strv_free(steps[i].argv);
        free(steps);
}

static int tap_step_add(VmTapStep **steps, size_t *n, const char *const *argv, bool may_fail, unsigned net,
                        unsigned tag) {
        _cleanup_strv_free_ char **copy = NULL;
        VmTapStep *grown;

        for (const char *const *a = argv; *a; a++)
                if (strv_extend(&copy, *a) < 0)
                        return -ENOMEM;
        grown = realloc(*steps, (*n + 1) * sizeof(**steps));
        if (!grown)
                return -ENOMEM;
        *steps = grown;
        grown[(*n)++] = (VmTapStep) { TAKE_PTR(copy), may_fail, net, tag };
        return 0;
}

/* A VLAN tag on a bridge without vlan_filtering cannot work: refused now,
 * as a bad request, instead of failing later in `bridge vlan add`. */
static int bridge_check(unsigned n, const VmNet *net, char **ret_error) {
        _cleanup_free_ char *brpath = strjoin("/sys/class/net/", net->ifname, "/bridge");
        _cleanup_free_ char *flt = NULL;
        size_t size = 0;

        if (!brpath)
                return -ENOMEM;
        if (access(brpath, F_OK) < 0)
                return set_error(ret_error, "net%u: bridge '%s' does not exist on this host", n, net->ifname),
                       -ENODEV;
        if (net->tag == 0)
                return 0;
        free(brpath);
        brpath = strjoin("/sys/class/net/", net->ifname, "/bridge/vlan_filtering");
        if (!brpath)
                return -ENOMEM;
        if (read_full_file(brpath, &flt, &size, 64) < 0 || !flt || flt[0] != '1')
                return set_error(ret_error, "net%u: cannot put the tap on VLAN %u of bridge %s: vlan_filtering "
                                 "is off on that bridge", n, net->tag, net->ifname),
                       -EOPNOTSUPP;
        return 0;
}

/* Bridged NICs: zvmd makes each tap (persistent, so QEMU only opens it),
 * enslaves it to the bridge and sets its VLAN, before QEMU starts. */
int vm_taps_plan(Vm *vm, VmTapStep **ret, size_t *ret_n, char **ret_error) {
        VmTapStep *steps = NULL;
        size_t n_steps = 0;
        const VmConfig *c = vm_running_config(vm);
        int r = 0;

        for (unsigned n = 0; n < VM_NETS_MAX && r >= 0; n++) {
                const VmNet *net = &c->nets[n];
                char tap[16], vid[16];

                if (!net->present || !net->bridge)
                        continue;
                r = bridge_check(n, net, ret_error);
                if (r < 0)
                        break;
                vm_tap_name(vm, n, tap);
                snprintf(vid, sizeof(vid), "%u", net->tag);
                /* A stale tap of ours first. */
                r = tap_step_add(&steps, &n_steps, (const char *const[]) { "ip", "link", "del", tap, NULL }, true, n, 0);
                if (r >= 0)
                        r = tap_step_add(&steps, &n_steps, (const char *const[]) { "ip", "tuntap", "add", "dev", tap,
                                         "mode", "tap", "vnet_hdr", NULL }, false, n, 0);
                if (r >= 0)
                        r = tap_step_add(&steps, &n_steps, (const char *const[]) { "ip", "link", "set", "dev", tap,
                                         "master", net->ifname, "up", NULL }, false, n, 0);
                if (r >= 0 && net->tag > 0)
                        r = tap_step_add(&steps, &n_steps, (const char *const[]) { "bridge", "vlan", "add", "dev", tap,
                                         "vid", vid, "pvid", "untagged", NULL }, false, n, net->tag);
                if (r >= 0 && net->tag > 0)
                        r = tap_step_add(&steps, &n_steps, (const char *const[]) { "bridge", "vlan", "del", "dev", tap,
                                         "vid", "1", NULL }, true, n, 0);
        }
        if (r < 0) {
                vm_tap_steps_free(steps, n_steps);
                return r;
        }
        *ret = steps;
        *ret_n = n_steps;
        return 0;
}

/* The message for a step that failed with `status` (ProcessJob's). */
int vm_tap_step_error(const Vm *vm, const VmTapStep *st, int status, const char *output, char **ret_error) {
        _cleanup_free_ char *cmd = strv_join(st->argv, " ");
        _cleanup_free_ char *out = strdup(output ? output : "");
        const char *why = status < 0 ? errno_str(status) : out ? strstrip(out) : "";

        if (st->tag > 0)
                set_error(ret_error, "net%u: cannot put the tap on VLAN %u of bridge %s: %s", st->net, st->tag,
                          vm_running_config(vm)->nets[st->net].ifname, why);
        else
                set_error(ret_error, "'%s' failed: %s", strnull(cmd), why);
        return status < 0 ? status : -EIO;
}
