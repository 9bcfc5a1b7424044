/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * vsock CID allocation.
 *
 * A guest CID must be unique on the host. zvm stores each VM's CID in its
 * config ("vsock: cid=N", allocated at creation); the picker chooses one
 * that no other zvm VM has and, with kernel vsock, that nobody else on the
 * host (another VM manager) holds right now.
 *
 * With kernel vsock (/dev/vhost-vsock) the kernel is the arbiter: a CID is
 * held by the /dev/vhost-vsock file descriptor on which
 * VHOST_VSOCK_SET_GUEST_CID succeeded, for as long as that descriptor is
 * open, and a second SET_GUEST_CID of the same CID elsewhere fails with
 * EADDRINUSE (this is how Incus and Kata allocate). cid_probe_vhost() does
 * that, and leaves the descriptor open so that the CID stays reserved; the
 * daemon passes it to QEMU as vhostfd= (QEMU's own SET_GUEST_CID of the same
 * CID on the same descriptor succeeds) and closes its copy once QEMU runs.
 * With hybrid vsock (vhost-device-vsock) the CID is only a name inside the
 * VM's own unix socket, so there is nothing to probe (probe = NULL).
 */

#include <stddef.h>
#include <stdint.h>

#define CID_ALLOC_MIN 3U                        /* 0..2: hypervisor, local, host */
#define CID_ALLOC_MAX 0xFFFFFFFEU               /* 0xFFFFFFFF: VMADDR_CID_ANY */
#define CID_ALLOC_VMID_OFFSET 1000U             /* preferred CID = vmid + 1000 (pve-microvm) */
#define CID_ALLOC_PROBES_MAX 65536U             /* give up (-ENOSPC) after this many probes */

/* Returns >= 0 if cid is free (and, for probes that reserve, now reserved),
 * -EADDRINUSE if something else on the host uses it, other -errno for a
 * hard error that ends the search. */
typedef int (*CidProbe)(uint32_t cid, void *userdata);

/*
 * Picks a CID for vmid: vmid + 1000 if that is a valid CID
 * (CID_ALLOC_MIN..CID_ALLOC_MAX), not in taken[] and accepted by probe;
 * else the lowest valid CID not in taken[] that probe accepts. probe NULL
 * accepts everything. taken[] need not be sorted and may hold duplicates or
 * invalid values. Returns 0 with *ret_cid set; -ENOSPC when no CID is left
 * or after CID_ALLOC_PROBES_MAX probes; the probe's hard error; -ENOMEM.
 */
int cid_alloc_pick(uint32_t vmid, const uint32_t *taken, size_t n_taken, CidProbe probe, void *userdata,
                   uint32_t *ret_cid);

/* userdata of cid_probe_vhost(). Initialise with CID_VHOST_PROBE_INIT. */
typedef struct CidVhostProbe {
        const char *device;     /* NULL: "/dev/vhost-vsock" */
        int fd;                 /* after success: the descriptor holding the CID (O_CLOEXEC); the caller owns it */
        /* NULL: the VHOST_VSOCK_SET_GUEST_CID ioctl on fd. Returns 0 or
         * -errno. Set only by tests, so that the path a busy CID takes is
         * covered on hosts without the vhost_vsock module. */
        int (*set_guest_cid)(int fd, uint64_t cid);
} CidVhostProbe;

#define CID_VHOST_PROBE_INIT ((CidVhostProbe) { .device = NULL, .fd = -EBADF, .set_guest_cid = NULL })

/* The probe for kernel vsock: opens the device (once, then reuses the
 * descriptor for further attempts) and calls VHOST_VSOCK_SET_GUEST_CID.
 * EADDRINUSE → -EADDRINUSE (try the next one). Opening failures (-ENOENT: no
 * vhost_vsock module) are hard errors. On success the descriptor stays open
 * in userdata->fd and holds the CID. */
int cid_probe_vhost(uint32_t cid, void *userdata);
