/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <inttypes.h>

#include "cid-alloc.h"
#include "fd-util.h"
#include "macro.h"
#include "tap.h"

/* A fake host: CIDs in busy[] are used by someone else (-EADDRINUSE), fail
 * is returned as a hard error for CID fail_at. Counts the probes. */
typedef struct FakeHost {
        const uint32_t *busy;
        size_t n_busy;
        uint32_t fail_at;
        int fail;
        uint32_t busy_below;            /* everything below is busy */
        unsigned probes;
        uint32_t last;
} FakeHost;

static int fake_probe(uint32_t cid, void *userdata) {
        FakeHost *h = userdata;

        h->probes++;
        h->last = cid;
        if (h->fail && cid == h->fail_at)
                return h->fail;
        if (cid < h->busy_below)
                return -EADDRINUSE;
        for (size_t i = 0; i < h->n_busy; i++)
                if (h->busy[i] == cid)
                        return -EADDRINUSE;
        return 0;
}

#define LIST(...) ((const uint32_t[]) { __VA_ARGS__ }), ELEMENTSOF(((const uint32_t[]) { __VA_ARGS__ }))

static void test_pick(void) {
        static const uint32_t none[1] = { 0 };
        static const uint32_t low[] = { 3, 4, 5, 6, 7, 8 };
        static const uint32_t busy_pref[] = { 1100 };
        static const uint32_t busy_mix[] = { 1100, 3, 5 };
        struct {
                const char *name;
                uint32_t vmid;
                const uint32_t *taken;
                size_t n_taken;
                const uint32_t *busy;
                size_t n_busy;
                bool probe;
                int r;
                uint32_t cid;
        } cases[] = {
                { "vmid+1000 free", 100, none, 0, NULL, 0, false, 0, 1100 },
                { "vmid+1000 free, probed", 100, none, 0, NULL, 0, true, 0, 1100 },
                { "vmid+1000 taken by a VM", 100, LIST(1100), NULL, 0, false, 0, 3 },
                { "vmid+1000 and low ones taken", 100, LIST(1100, 3, 4, 6), NULL, 0, false, 0, 5 },
                { "unsorted, duplicate and invalid taken", 100, LIST(4, 1100, 3, 3, 0, 0xFFFFFFFF, 5), NULL, 0, false, 0,
                  6 },
                { "all low ones taken", 100, LIST(1100, 3, 4, 5, 6, 7, 8), NULL, 0, false, 0, 9 },
                { "big vmid still valid", 999999999, none, 0, NULL, 0, false, 0, 1000000999 },
                { "vmid+1000 = 0xFFFFFFFE valid", 0xFFFFFFFEU - 1000, none, 0, NULL, 0, false, 0, 0xFFFFFFFE },
                { "vmid+1000 = VMADDR_CID_ANY invalid", 0xFFFFFFFFU - 1000, none, 0, NULL, 0, false, 0, 3 },
                { "vmid+1000 beyond 32 bits invalid", 0xFFFFFFFFU, none, 0, NULL, 0, false, 0, 3 },
                { "vmid 0: 1000", 0, none, 0, NULL, 0, false, 0, 1000 },
                { "vmid+1000 busy on the host", 100, none, 0, busy_pref, ELEMENTSOF(busy_pref), true, 0, 3 },
                { "busy on host and taken", 100, LIST(4), busy_mix, ELEMENTSOF(busy_mix), true, 0, 6 },
                { "low ones busy on the host", 200, LIST(1200), low, ELEMENTSOF(low), true, 0, 9 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                FakeHost h = { .busy = cases[i].busy, .n_busy = cases[i].n_busy };
                uint32_t cid = 0;
                int r;

                r = cid_alloc_pick(cases[i].vmid, cases[i].taken, cases[i].n_taken,
                                   cases[i].probe ? fake_probe : NULL, &h, &cid);
                is_int(r, cases[i].r, "%s: result", cases[i].name);
                is_int(cid, cases[i].cid, "%s: CID", cases[i].name);
                if (cases[i].probe)
                        is_int(h.last, cid, "%s: the accepted CID was the last probed", cases[i].name);
        }
}

/* The order: the preferred CID, then upwards from CID_ALLOC_MIN past it,
 * each candidate asked once; the probe bound ends an exhausted host. */
static void test_order(void) {
        FakeHost h;
        uint32_t cid = 0;

        h = (FakeHost) { .busy_below = 1006 };
        is_int(cid_alloc_pick(5, NULL, 0, fake_probe, &h, &cid), 0, "preferred and all below busy");
        is_int(cid, 1006, "the scan continues past the preferred CID");
        is_int(h.probes, 1 + (1005 - 3) + 1, "the preferred CID is not probed a second time by the scan");

        h = (FakeHost) { .busy_below = 1000 };
        is_int(cid_alloc_pick(0, LIST(1000), fake_probe, &h, &cid), 0, "preferred taken, all below busy");
        is_int(cid, 1001, "first free after the taken preferred CID");
        is_int(h.probes, (1000 - 3) + 1, "taken CIDs are never probed");

        h = (FakeHost) { .busy_below = 0xFFFFFFFF };
        is_int(cid_alloc_pick(0xFFFFFFFF, NULL, 0, fake_probe, &h, &cid), -ENOSPC, "exhausted, no preferred CID");
        is_int(h.probes, CID_ALLOC_PROBES_MAX, "exactly CID_ALLOC_PROBES_MAX probes");
        is_int(h.last, CID_ALLOC_MIN + CID_ALLOC_PROBES_MAX - 1, "the last probed CID: MIN + bound - 1, in order");
}

static void test_errors(void) {
        FakeHost h = {};
        uint32_t cid = 77;

        /* A hard error ends the search and is passed on. */
        h = (FakeHost) { .fail_at = 1100, .fail = -EPERM };
        is_int(cid_alloc_pick(100, NULL, 0, fake_probe, &h, &cid), -EPERM, "hard error on the preferred CID");
        is_int(cid, 77, "ret_cid untouched on error");
        is_int(h.probes, 1, "one probe");

        h = (FakeHost) { .fail_at = 5, .fail = -ENODEV, .busy_below = 5 };
        is_int(cid_alloc_pick(0xFFFFFFFF, NULL, 0, fake_probe, &h, &cid), -ENODEV, "hard error during the scan");
        is_int(h.probes, 3, "probed 3, 4, 5");

        /* The probe bound. */
        h = (FakeHost) { .busy_below = 0xFFFFFFFF };
        is_int(cid_alloc_pick(100, NULL, 0, fake_probe, &h, &cid), -ENOSPC, "everything busy: -ENOSPC");
        is_int(h.probes, CID_ALLOC_PROBES_MAX, "gave up after CID_ALLOC_PROBES_MAX probes");

        /* Taken CIDs do not count against the bound (they are not probed). */
        {
                size_t n = 100000;
                _cleanup_free_ uint32_t *taken = calloc(n, sizeof(uint32_t));

                assert_se(taken);
                for (size_t i = 0; i < n; i++)
                        taken[i] = (uint32_t) (n + 2 - i);   /* 3 .. n+2, reversed */
                h = (FakeHost) {};
                is_int(cid_alloc_pick(0xFFFFFFFF, taken, n, fake_probe, &h, &cid), 0, "100000 taken CIDs");
                is_int(cid, n + 3, "first free after them");
                is_int(h.probes, 1, "a single probe");
        }

        is_int(cid_alloc_pick(100, NULL, 3, NULL, NULL, &cid), -EINVAL, "NULL taken with n > 0");
        is_int(cid_alloc_pick(100, NULL, 0, NULL, NULL, NULL), -EINVAL, "NULL ret_cid");
}

/* The host's side of VHOST_VSOCK_SET_GUEST_CID for hosts without the
 * device: CIDs in busy[] are held elsewhere (EADDRINUSE, as the kernel
 * answers), the rest are accepted. Records the descriptor each call used. */
typedef struct HostCids {
        const uint32_t *busy;
        size_t n_busy;
        int fail;               /* != 0: every call fails with this */
        unsigned calls;
        int fds[8];
        uint64_t last;
} HostCids;

static HostCids host_cids;

static int host_set_guest_cid(int fd, uint64_t cid) {
        HostCids *h = &host_cids;

        if (h->calls < ELEMENTSOF(h->fds))
                h->fds[h->calls] = fd;
        h->calls++;
        h->last = cid;
        if (h->fail)
                return h->fail;
        for (size_t i = 0; i < h->n_busy; i++)
                if (h->busy[i] == cid)
                        return -EADDRINUSE;
        return 0;
}

/* cid_probe_vhost() without the device: the descriptor handling and the
 * busy → next path, through the set_guest_cid seam on a real descriptor
 * (/dev/null stands in for /dev/vhost-vsock). */
static void test_vhost_seam(void) {
        static const uint32_t busy[] = { 1100, 3, 4 };
        CidVhostProbe p = CID_VHOST_PROBE_INIT;
        uint32_t cid = 0;
        int flags;

        host_cids = (HostCids) { .busy = busy, .n_busy = ELEMENTSOF(busy) };
        p.device = "/dev/null";
        p.set_guest_cid = host_set_guest_cid;
        is_int(cid_alloc_pick(100, LIST(5), cid_probe_vhost, &p, &cid), 0, "seam: busy CIDs are passed over");
        is_int(cid, 6, "seam: 1100, 3, 4 busy on the host, 5 taken by a VM: 6");
        is_int(host_cids.calls, 4, "seam: 1100, 3, 4 and 6 asked, the taken 5 not");
        is_int(host_cids.last, 6, "seam: the accepted CID was the last one set");
        ok(p.fd >= 0, "seam: the descriptor stays open, holding the CID");
        ok(host_cids.fds[0] == p.fd && host_cids.fds[1] == p.fd && host_cids.fds[2] == p.fd &&
           host_cids.fds[3] == p.fd, "seam: one descriptor for every attempt (the device is opened once)");
        flags = fcntl(p.fd, F_GETFD);
        ok(flags >= 0 && (flags & FD_CLOEXEC), "seam: the descriptor is O_CLOEXEC");
        p.fd = safe_close(p.fd);

        /* A hard error from the kernel ends the search; the caller closes the fd. */
        host_cids = (HostCids) { .fail = -EPERM };
        p = CID_VHOST_PROBE_INIT;
        p.device = "/dev/null";
        p.set_guest_cid = host_set_guest_cid;
        cid = 77;
        is_int(cid_alloc_pick(100, NULL, 0, cid_probe_vhost, &p, &cid), -EPERM, "seam: hard error passed on");
        is_int(host_cids.calls, 1, "seam: after one attempt");
        is_int(cid, 77, "seam: ret_cid untouched");
        p.fd = safe_close(p.fd);
}

/* The real ioctl: what can run here, then what needs /dev/vhost-vsock. */
static void test_vhost(void) {
        CidVhostProbe p = CID_VHOST_PROBE_INIT;
        uint32_t cid = 0;

        /* A device that does not exist is a hard error, not "in use". */
        p.device = "/nonexistent/vhost-vsock";
        is_int(cid_probe_vhost(1100, &p), -ENOENT, "missing device: -ENOENT");
        ok(p.fd < 0, "no fd kept");
        is_int(cid_alloc_pick(100, NULL, 0, cid_probe_vhost, &p, &cid), -ENOENT, "picker passes -ENOENT on");

        /* A file that is not the device: the real ioctl fails with ENOTTY,
         * a hard error. The descriptor is kept and reused: pointing the
         * probe at a missing device afterwards does not reopen. */
        p = CID_VHOST_PROBE_INIT;
        p.device = "/dev/null";
        is_int(cid_probe_vhost(1100, &p), -ENOTTY, "not a vhost device: -ENOTTY from the real ioctl");
        ok(p.fd >= 0, "the descriptor is kept after a failed ioctl (the caller closes it)");
        p.device = "/nonexistent/vhost-vsock";
        is_int(cid_probe_vhost(1101, &p), -ENOTTY, "second probe reuses the descriptor");
        p.fd = safe_close(p.fd);

        if (access("/dev/vhost-vsock", R_OK | W_OK) < 0) {
                skip(4, "/dev/vhost-vsock not usable here (%s): the kernel's CID arbitration needs the "
                     "vhost_vsock module", strerror(errno));
                return;
        }

        {
                CidVhostProbe a = CID_VHOST_PROBE_INIT, b = CID_VHOST_PROBE_INIT;
                uint32_t ca = 0, cb = 0;

                is_int(cid_alloc_pick(4000000000U - 1000, NULL, 0, cid_probe_vhost, &a, &ca), 0, "real probe");
                ok(a.fd >= 0, "fd holds the CID");
                /* The same preferred CID for a second holder: must move on. */
                is_int(cid_alloc_pick(4000000000U - 1000, NULL, 0, cid_probe_vhost, &b, &cb), 0, "second real probe");
                ok(ca != cb, "the CID held by the first fd is not handed out again (%" PRIu32 " vs %" PRIu32 ")", ca,
                   cb);
                a.fd = safe_close(a.fd);
                b.fd = safe_close(b.fd);
        }
}

int main(void) {
        test_pick();
        test_order();
        test_errors();
        test_vhost_seam();
        test_vhost();
        return done_testing();
}
