/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* A process's PSS by kind of mapping, from /proc/PID/smaps. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "macro.h"
#include "memory-usage.h"

typedef enum MappingKind {
        MAPPING_PRIVATE,
        MAPPING_GUEST_RAM,
        MAPPING_TCG_CACHE,
        MAPPING_FILE,
} MappingKind;

/* A header line: "start-end perms offset dev inode [path]". */
static MappingKind mapping_kind(const char *line) {
        char perms[8] = "", path[256] = "";
        unsigned long inode = 0;

        if (sscanf(line, "%*x-%*x %7s %*x %*s %lu %255[^\n]", perms, &inode, path) < 2)
                return MAPPING_PRIVATE;
        /* The memfd QEMU backs guest RAM with (memory-backend-memfd), and
         * any other shared memory it maps. */
        if (perms[3] == 's' || strstr(path, "memfd:") || startswith(path, "/dev/shm/"))
                return MAPPING_GUEST_RAM;
        if (inode != 0)
                return MAPPING_FILE;
        /* TCG's code buffer is the one anonymous mapping that is
         * writable and executable at once. */
        if (perms[0] == 'r' && perms[1] == 'w' && perms[2] == 'x' && path[0] == '\0')
                return MAPPING_TCG_CACHE;
        return MAPPING_PRIVATE;
}

int memory_usage_read(pid_t pid, MemoryUsage *ret) {
        _cleanup_fclose_ FILE *f = NULL;
        char p[64], line[512];
        MemoryUsage u = {};
        MappingKind kind = MAPPING_PRIVATE;

        assert_return(pid > 0, -EINVAL);
        assert_return(ret, -EINVAL);

        (void) snprintf(p, sizeof(p), "/proc/%d/smaps", (int) pid);
        f = fopen(p, "re");
        if (!f)
                return errno == ENOENT ? -ESRCH : -errno;
        while (fgets(line, sizeof(line), f)) {
                uint64_t kib;

                if (!strchr(line, '\n') && !feof(f)) {
                        int c;          /* a long path: skip the rest of the line */

                        while ((c = fgetc(f)) != EOF && c != '\n')
                                ;
                }
                if (sscanf(line, "Pss: %" SCNu64 " kB", &kib) == 1) {
                        u.pss_kib += kib;
                        *(kind == MAPPING_GUEST_RAM ? &u.guest_ram_kib :
                          kind == MAPPING_TCG_CACHE ? &u.tcg_cache_kib :
                          kind == MAPPING_FILE ? &u.files_kib : &u.private_kib) += kib;
                } else if ((line[0] >= '0' && line[0] <= '9') || (line[0] >= 'a' && line[0] <= 'f'))
                        kind = mapping_kind(line);      /* field lines start with a capital: "Rss:" */
        }
        if (ferror(f))
                return -EIO;
        *ret = u;
        return 0;
}
