/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * zvmd owns each VM's serial console. QEMU's serial chardev is a server on
 * <run>/vms/<vmid>/serial.sock, a listening socket zvmd creates and QEMU
 * inherits (as QMP's); zvmd is its one client. What the guest prints goes
 * to console.log (capped and rotated once, daemon/console-log.h) and to
 * every client attached to <run>/vms/<vmid>/console.sock, where zvmd
 * listens (`zvm console` connects there); what clients type goes to the
 * guest. A restarted zvmd connects to serial.sock again (QEMU's server
 * accepts a new client once the old one is gone).
 *
 * Every resource is bounded: at most CONSOLE_READ_MAX bytes read from the
 * guest per wakeup, at low priority, and a guest that prints flat out is
 * read only every 10 ms (QEMU then holds its UART: the guest waits, zvmd
 * does not; some 25 KB/s, twice a 115200-baud line); CONSOLE_CLIENTS_MAX
 * clients, each with a send queue of CONSOLE_CLIENT_QUEUE_MAX bytes (a
 * client that falls further behind is dropped, never waited for);
 * CONSOLE_INPUT_MAX bytes of typed input queued for the guest (clients are
 * not read while it is full).
 * Only root can connect to either socket (0600).
 */

#include <stdint.h>
#include <systemd/sd-event.h>

#define CONSOLE_READ_MAX (64U * 1024U)
#define CONSOLE_CLIENTS_MAX 4U
#define CONSOLE_CLIENT_QUEUE_MAX (256U * 1024U)
#define CONSOLE_INPUT_MAX (4U * 1024U)

typedef struct VmConsole VmConsole;

/* Before QEMU starts: creates serial.sock, listening, and returns its fd
 * for QEMU to inherit (O_CLOEXEC: the spawn keeps it; close it afterwards).
 * QEMU is told wait=on: it runs the guest only once zvmd has connected, so
 * no byte of the boot is lost. */
int console_listen_serial(const char *run_dir, int *ret_fd);
/* Once QEMU runs (just spawned, or re-adopted): opens console.log, listens
 * on console.sock and connects to serial.sock (retried every second until
 * it works). Replaces *console (closing the old one). -ENOENT, touching
 * nothing, if there is no serial.sock (a QEMU started before zvmd owned the
 * console). run_dir must outlive the console; vmid is for logs. */
int console_open(sd_event *event, uint32_t vmid, const char *run_dir, uint64_t log_max, VmConsole **console);
/* Stops relaying and drops the clients. Unlinks nothing: QEMU's serial.sock
 * is what the next zvmd connects to, console.log is what `zvm logs` reads
 * after the VM stopped. */
void console_close(VmConsole **console);
