/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <linux/vhost.h>
#include <sys/ioctl.h>

#include "cid-alloc.h"
#include "macro.h"

static int cmp_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

        return x < y ? -1 : x > y;
}

static bool cid_is_valid(uint64_t cid) {
        return cid >= CID_ALLOC_MIN && cid <= CID_ALLOC_MAX;
}

static bool taken_contains(const uint32_t *sorted, size_t n, uint32_t cid) {
        return n > 0 && bsearch(&cid, sorted, n, sizeof(uint32_t), cmp_u32);
}

int cid_alloc_pick(uint32_t vmid, const uint32_t *taken, size_t n_taken, CidProbe probe, void *userdata,
                   uint32_t *ret_cid) {
        _cleanup_free_ uint32_t *sorted = NULL;
        uint64_t preferred = (uint64_t) vmid + CID_ALLOC_VMID_OFFSET;
        unsigned probes = 0;
        size_t t = 0;
        int r;

        assert_return(taken || n_taken == 0, -EINVAL);
        assert_return(ret_cid, -EINVAL);

        /* Sorted, so that the scan below walks the taken list alongside
         * the candidates: O(n log n) however many VMs there are. */
        if (n_taken > 0) {
                sorted = reallocarray(NULL, n_taken, sizeof(uint32_t));
                if (!sorted)
                        return -ENOMEM;
                memcpy(sorted, taken, n_taken * sizeof(uint32_t));
                qsort(sorted, n_taken, sizeof(uint32_t), cmp_u32);
        }

        if (cid_is_valid(preferred) && !taken_contains(sorted, n_taken, (uint32_t) preferred)) {
                r = probe ? probe((uint32_t) preferred, userdata) : 0;
                probes++;
                if (r >= 0) {
                        *ret_cid = (uint32_t) preferred;
                        return 0;
                }
                if (r != -EADDRINUSE)
                        return r;
        }

        /* Every iteration either skips a taken CID (at most n_taken of
         * them) or probes (bounded): the loop is bounded either way. */
        for (uint64_t cid = CID_ALLOC_MIN; cid <= CID_ALLOC_MAX; cid++) {
                while (t < n_taken && sorted[t] < cid)
                        t++;
                if (t < n_taken && sorted[t] == cid)
                        continue;
                if (cid == preferred)
                        continue;               /* tried above */
                if (probes >= CID_ALLOC_PROBES_MAX)
                        return -ENOSPC;

                r = probe ? probe((uint32_t) cid, userdata) : 0;
                probes++;
                if (r >= 0) {
                        *ret_cid = (uint32_t) cid;
                        return 0;
                }
                if (r != -EADDRINUSE)
                        return r;
        }

        return -ENOSPC;
}

static int vhost_set_guest_cid(int fd, uint64_t cid) {
        return ioctl(fd, VHOST_VSOCK_SET_GUEST_CID, &cid) < 0 ? -errno : 0;
}

int cid_probe_vhost(uint32_t cid, void *userdata) {
        CidVhostProbe *p = userdata;

        assert_return(p, -EINVAL);

        if (p->fd < 0) {
                p->fd = open(p->device ?: "/dev/vhost-vsock", O_RDWR | O_CLOEXEC | O_NOCTTY);
                if (p->fd < 0)
                        return -errno;
        }

        return (p->set_guest_cid ?: vhost_set_guest_cid)(p->fd, cid);
}
