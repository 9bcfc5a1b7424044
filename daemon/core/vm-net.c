/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Bridged NICs: the persistent taps zvmd makes (and removes) around QEMU. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
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
#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "process.h"
#include "qemu-argv.h"
#include "string-util.h"
#include "ssh.h"
#include "time-util.h"
#include "vm.h"
#include "vm-internal.h"


static void vm_tap_name(const Vm *vm, unsigned n, char buf[static 16]) {
        /* Must match the ifname= qemu-argv gives QEMU. */
        snprintf(buf, 16, "zvm%" PRIu32 "i%u", vm->vmid, n);
}
static int run_ip(char **argv, char **ret_error) {
        _cleanup_free_ char *out = NULL;
        int r = process_run(argv, 10000, &out);

        if (r != 0) {
                _cleanup_free_ char *cmd = strv_join(argv, " ");

                set_error(ret_error, "'%s' failed: %s", strnull(cmd), r < 0 ? errno_str(r) : strstrip(out));
                return r < 0 ? r : -EIO;
        }
        return 0;
}
/* The taps of the run (vm->running, taken before they are made): a NIC
 * removed from the config while the VM ran still has its tap removed. */
void vm_taps_remove(Vm *vm) {
        const VmConfig *c = vm_running_config(vm);

        for (unsigned n = 0; n < VM_NETS_MAX; n++) {
                char tap[16];

                if (!c->nets[n].present || !c->nets[n].bridge)
                        continue;
                vm_tap_name(vm, n, tap);
                char *argv[] = { (char *) "ip", (char *) "link", (char *) "del", tap, NULL };
                (void) process_run(argv, 10000, NULL);
        }
}
/* Bridged NICs: zvmd makes each tap (persistent, so QEMU only opens it),
 * enslaves it to the bridge and sets its VLAN, before QEMU starts. */
int vm_taps_create(Vm *vm, char **ret_error) {
        const VmConfig *c = vm_running_config(vm);

        for (unsigned n = 0; n < VM_NETS_MAX; n++) {
                const VmNet *net = &c->nets[n];
                _cleanup_free_ char *brpath = NULL;
                char tap[16], vid[16];
                int r;

                if (!net->present || !net->bridge)
                        continue;
                brpath = strjoin("/sys/class/net/", net->ifname, "/bridge");
                if (!brpath)
                        return -ENOMEM;
                if (access(brpath, F_OK) < 0)
                        return set_error(ret_error, "net%u: bridge '%s' does not exist on this host", n, net->ifname),
                               -ENODEV;
                vm_tap_name(vm, n, tap);
                char *del[] = { (char *) "ip", (char *) "link", (char *) "del", tap, NULL };
                (void) process_run(del, 10000, NULL);      /* a stale tap of ours */
                char *add[] = { (char *) "ip", (char *) "tuntap", (char *) "add", (char *) "dev", tap, (char *) "mode",
                                (char *) "tap", (char *) "vnet_hdr", NULL };
                char *up[] = { (char *) "ip", (char *) "link", (char *) "set", (char *) "dev", tap, (char *) "master",
                               net->ifname, (char *) "up", NULL };
                r = run_ip(add, ret_error);
                if (r >= 0)
                        r = run_ip(up, ret_error);
                if (r >= 0 && net->tag > 0) {
                        snprintf(vid, sizeof(vid), "%u", net->tag);
                        char *vlan[] = { (char *) "bridge", (char *) "vlan", (char *) "add", (char *) "dev", tap,
                                         (char *) "vid", vid, (char *) "pvid", (char *) "untagged", NULL };
                        char *novlan1[] = { (char *) "bridge", (char *) "vlan", (char *) "del", (char *) "dev", tap,
                                            (char *) "vid", (char *) "1", NULL };
                        _cleanup_free_ char *why = NULL;

                        r = run_ip(vlan, &why);
                        if (r >= 0)
                                (void) process_run(novlan1, 10000, NULL);
                        else {
                                set_error(ret_error, "net%u: cannot put the tap on VLAN %u of bridge %s (is "
                                          "vlan_filtering on?): %s", n, net->tag, net->ifname, strnull(why));
                                r = -EOPNOTSUPP;
                        }
                }
                if (r < 0) {
                        vm_taps_remove(vm);
                        return r;
                }
        }
        return 0;
}
