/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * Small macros used everywhere: cleanup attributes, ownership transfer,
 * error-code helpers and a few string predicates. Header-only and free of
 * dependencies beyond libc, so that it can also be used by programs that do
 * not link libzvm-common.
 */

#include <errno.h>
#include <stddef.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- attributes ---------------------------------------------------------- */

#define _cleanup_(x) __attribute__((__cleanup__(x)))
#define _unused_ __attribute__((__unused__))
#define _printf_(a, b) __attribute__((__format__(printf, a, b)))
#define _sentinel_ __attribute__((__sentinel__))
#define _pure_ __attribute__((__pure__))
#define _const_ __attribute__((__const__))
#define _noreturn_ __attribute__((__noreturn__))
#define _warn_unused_result_ __attribute__((__warn_unused_result__))
#define _likely_(x) (__builtin_expect(!!(x), 1))
#define _unlikely_(x) (__builtin_expect(!!(x), 0))

/* ---- unique identifiers for macro-local variables ------------------------ */

/* Statement-expression macros declare locals; giving every expansion its own
 * names keeps nested uses (MAX(MAX(a, b), c)) clean under -Werror=shadow. */
#define XCONCATENATE(x, y) x##y
#define CONCATENATE(x, y) XCONCATENATE(x, y)
#define UNIQ_T(x, uniq) CONCATENATE(_zvm_uniq_, CONCATENATE(x, uniq))
#define UNIQ __COUNTER__

#define MAX(a, b) _ZVM_MAX(UNIQ, (a), UNIQ, (b))
#define _ZVM_MAX(aq, a, bq, b)                                                  \
        ({                                                                      \
                const __typeof__(a) UNIQ_T(A, aq) = (a);                        \
                const __typeof__(b) UNIQ_T(B, bq) = (b);                        \
                UNIQ_T(A, aq) > UNIQ_T(B, bq) ? UNIQ_T(A, aq) : UNIQ_T(B, bq);  \
        })

#define MIN(a, b) _ZVM_MIN(UNIQ, (a), UNIQ, (b))
#define _ZVM_MIN(aq, a, bq, b)                                                  \
        ({                                                                      \
                const __typeof__(a) UNIQ_T(A, aq) = (a);                        \
                const __typeof__(b) UNIQ_T(B, bq) = (b);                        \
                UNIQ_T(A, aq) < UNIQ_T(B, bq) ? UNIQ_T(A, aq) : UNIQ_T(B, bq);  \
        })

/* The struct that embeds *ptr as its member: how a module that knows only
 * its own part (a VmAgent) hands its owner (the Vm) back to the caller. */
#define container_of(ptr, type, member)                                         \
        ((type *) ((char *) (1 ? (ptr) : &((type *) 0)->member) - offsetof(type, member)))

/* Number of elements of an array. Refuses to compile when given a pointer:
 * the (void) branch makes the division expression void. */
#define ELEMENTSOF(x)                                                           \
        (__builtin_choose_expr(                                                 \
                !__builtin_types_compatible_p(__typeof__(x), __typeof__(&*(x))), \
                sizeof(x) / sizeof((x)[0]),                                     \
                (void) 0))

/* ---- error codes ---------------------------------------------------------- */

/* Marks an errno value the code invented (e.g. "bad config" reported as
 * EINVAL) rather than one returned by a system call. The log functions accept
 * it and return the plain negative errno:
 *
 *         return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "Bad name '%s'.", n);
 *
 * Never return a SYNTHETIC_ERRNO() value from a function: strip it with
 * ERRNO_VALUE() (the log functions do that for you). */
#define _ZVM_SYNTHETIC_ERRNO_FLAG (1 << 30)
#define SYNTHETIC_ERRNO(num) (abs(num) | _ZVM_SYNTHETIC_ERRNO_FLAG)
#define IS_SYNTHETIC_ERRNO(val) (((val) >= 0) && ((val) & _ZVM_SYNTHETIC_ERRNO_FLAG))
#define ERRNO_VALUE(val) (abs(val) & ~_ZVM_SYNTHETIC_ERRNO_FLAG)

/* Argument checks for public library functions: a violated precondition is a
 * programming error in the caller, reported as an error code (never a log
 * message and never an abort, library code must not take the process down). */
#define assert_return(expr, r)                                                  \
        do {                                                                    \
                if (_unlikely_(!(expr)))                                        \
                        return (r);                                             \
        } while (false)

#define assert_return_void(expr)                                                \
        do {                                                                    \
                if (_unlikely_(!(expr)))                                        \
                        return;                                                 \
        } while (false)

/* An assertion whose expression is always evaluated, also with NDEBUG. */
#define assert_se(expr)                                                         \
        do {                                                                    \
                if (_unlikely_(!(expr))) {                                      \
                        fprintf(stderr, "Assertion '%s' failed at %s:%i, function %s(). Aborting.\n", \
                                #expr, __FILE__, __LINE__, __func__);           \
                        abort();                                                \
                }                                                               \
        } while (false)

/* ---- ownership transfer --------------------------------------------------- */

/* Return the value of a pointer variable and set it to NULL, so that a
 * _cleanup_ attribute on it no longer frees it: "return TAKE_PTR(p);" */
#define TAKE_PTR(p) _ZVM_TAKE_PTR(UNIQ, p)
#define _ZVM_TAKE_PTR(q, p)                                                     \
        ({                                                                      \
                __typeof__(p) *UNIQ_T(PP, q) = &(p);                            \
                __typeof__(p) UNIQ_T(V, q) = *UNIQ_T(PP, q);                    \
                *UNIQ_T(PP, q) = NULL;                                          \
                UNIQ_T(V, q);                                                   \
        })

/* Same for file descriptors: the variable becomes -EBADF. */
#define TAKE_FD(fd) _ZVM_TAKE_FD(UNIQ, fd)
#define _ZVM_TAKE_FD(q, fd)                                                     \
        ({                                                                      \
                int *UNIQ_T(PP, q) = &(fd);                                     \
                int UNIQ_T(V, q) = *UNIQ_T(PP, q);                              \
                *UNIQ_T(PP, q) = -EBADF;                                        \
                UNIQ_T(V, q);                                                   \
        })

/* ---- cleanup helpers ------------------------------------------------------ */

/* Defines funcp(type *p) calling func(*p) when *p is non-NULL; func may
 * return anything (free-style functions returning NULL, fclose, ...). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                 \
        static inline void func##p(type *p) {                                   \
                if (*p)                                                         \
                        (void) func(*p);                                        \
        }

/* free() that returns NULL: "p = mfree(p);" */
static inline void *mfree(void *p) {
        free(p);
        return NULL;
}

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

/* close() that keeps errno, for cleanup paths. Linux releases the descriptor
 * even when close() fails (also on EINTR), so the result is never retried. */
static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved_errno = errno;
                (void) close(*fd);
                errno = saved_errno;
        }
        *fd = -EBADF;
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f) {
                int saved_errno = errno;
                (void) fclose(*f);
                errno = saved_errno;
        }
        *f = NULL;
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* ---- string predicates ---------------------------------------------------- */

#define streq(a, b) (strcmp((a), (b)) == 0)
#define strneq(a, b, n) (strncmp((a), (b), (n)) == 0)

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return streq(a, b);
}

static inline bool isempty(const char *s) {
        return !s || s[0] == '\0';
}

static inline const char *strempty(const char *s) {
        return s ?: "";
}

static inline const char *strnull(const char *s) {
        return s ?: "(null)";
}

/* If s starts with prefix, return a pointer to the rest of s, else NULL. */
static inline char *startswith(const char *s, const char *prefix) {
        size_t l = strlen(prefix);

        if (strncmp(s, prefix, l) != 0)
                return NULL;
        return (char *) s + l;
}
