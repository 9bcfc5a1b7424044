/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The HTTP server's listeners: one MHD daemon per socket (unix or TCP,
 * with TLS), driven by sd-event sources. */

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "fd-util.h"
#include "http-server.h"
#include "http-server-internal.h"
#include "log.h"
#include "string-util.h"
#include "time-util.h"


/* ---- listeners ------------------------------------------------------------ */

static void listener_arm_timer(HttpListener *l) {
        MHD_UNSIGNED_LONG_LONG ms = 0;
        uint64_t now, usec;
        int r;

        if (MHD_get_timeout(l->daemon, &ms) != MHD_YES) {
                (void) sd_event_source_set_enabled(l->time_source, SD_EVENT_OFF);
                return;
        }

        r = sd_event_now(l->server->event, CLOCK_MONOTONIC, &now);
        if (r < 0) {
                log_debug_errno(r, "Failed to read the event loop clock: %m");
                return;
        }
        usec = ms > (UINT64_MAX - now) / 1000U ? UINT64_MAX - 1 : now + ms * 1000U;

        r = sd_event_source_set_time(l->time_source, usec);
        if (r >= 0)
                r = sd_event_source_set_enabled(l->time_source, SD_EVENT_ONESHOT);
        if (r < 0)
                log_debug_errno(r, "Failed to arm the HTTP timer: %m");
}

static void listener_run(HttpListener *l) {
        if (l->server->note)
                l->server->note("HTTP I/O");
        if (MHD_run(l->daemon) != MHD_YES)
                log_debug("MHD_run() failed.");
        listener_arm_timer(l);
}

static int on_listener_io(sd_event_source *source, int fd, uint32_t revents, void *userdata) {
        listener_run(userdata);
        return 0;
}

static int on_listener_time(sd_event_source *source, uint64_t usec, void *userdata) {
        listener_run(userdata);
        return 0;
}

int http_on_defer(sd_event_source *source, void *userdata) {
        HttpServer *s = userdata;

        for (size_t i = 0; i < s->n_listeners; i++)
                listener_run(s->listeners[i]);
        return 0;
}

HttpListener *http_listener_free(HttpListener *l) {
        if (!l)
                return NULL;
        l->io_source = sd_event_source_disable_unref(l->io_source);
        l->time_source = sd_event_source_disable_unref(l->time_source);
        if (l->daemon)
                MHD_stop_daemon(l->daemon);     /* also closes the listening socket */
        if (l->unix_path)
                (void) unlink(l->unix_path);
        free(l->unix_path);
        free(l->tls_cert);
        erase_and_free(l->tls_key);
        return mfree(l);
}

/* Takes fd (a bound, listening, non-blocking socket) in every case. */
static int listener_start(HttpServer *s, int fd, bool tcp, bool ipv6, int port, const HttpTls *tls,
                          http_auth_fn auth, void *auth_userdata, const char *unix_path) {
        _cleanup_close_ int lfd = fd;
        const union MHD_DaemonInfo *info;
        HttpListener *l;
        size_t n = 0;
        int r;

        if (s->n_listeners >= HTTP_LISTENERS_MAX)
                return -ENOSPC;
        if (tls && MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
                return -EOPNOTSUPP;

        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->server = s;
        l->tcp = tcp;
        l->auth = auth;
        l->auth_userdata = auth_userdata;
        l->port = port;
        if (tls) {
                l->tls_cert = strdup(tls->cert_pem);
                l->tls_key = strdup(tls->key_pem);
                if (!l->tls_cert || !l->tls_key) {
                        http_listener_free(l);
                        return -ENOMEM;
                }
        }

        struct MHD_OptionItem opts[16] = {};
#define OPT(o, v, p) opts[n++] = (struct MHD_OptionItem) { (o), (intptr_t) (v), (p) }
        OPT(MHD_OPTION_LISTEN_SOCKET, lfd, NULL);
        OPT(MHD_OPTION_CONNECTION_LIMIT, HTTP_CONNECTIONS_MAX, NULL);
        /* On TCP the idle timeout is also what ends a keep-alive connection
         * nobody uses: shorter there. */
        OPT(MHD_OPTION_CONNECTION_TIMEOUT, tcp ? MIN(s->idle_timeout, HTTP_TCP_IDLE_TIMEOUT_SEC) : s->idle_timeout, NULL);
        OPT(MHD_OPTION_CONNECTION_MEMORY_LIMIT, HTTP_CONNECTION_MEMORY, NULL);
        OPT(MHD_OPTION_URI_LOG_CALLBACK, http_on_uri, l);
        OPT(MHD_OPTION_NOTIFY_COMPLETED, http_on_completed, l);
        OPT(MHD_OPTION_NOTIFY_CONNECTION, http_on_connection, l);
        OPT(MHD_OPTION_STRICT_FOR_CLIENT, 1, NULL);
        if (tcp)
                OPT(MHD_OPTION_PER_IP_CONNECTION_LIMIT, HTTP_TCP_PER_IP_MAX, NULL);
        if (tls) {
                OPT(MHD_OPTION_HTTPS_MEM_CERT, 0, l->tls_cert);
                OPT(MHD_OPTION_HTTPS_MEM_KEY, 0, l->tls_key);
        }
        OPT(MHD_OPTION_END, 0, NULL);
#undef OPT
        assert(n <= ELEMENTSOF(opts));

        /* MHD owns the socket once it started; on failure it leaves it to us
         * (the one failure path in which 0.9.75 closes it, failing to make
         * it non-blocking, cannot happen: it already is). */
        l->daemon = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
                                     (ipv6 ? MHD_USE_IPv6 : 0) | (tls ? MHD_USE_TLS : 0),
                                     (uint16_t) port, NULL, NULL, http_on_access, l,
                                     /* first, or MHD reports option errors on stderr */
                                     MHD_OPTION_EXTERNAL_LOGGER, http_on_mhd_log, l,
                                     MHD_OPTION_ARRAY, opts,
                                     MHD_OPTION_END);
        if (!l->daemon) {
                http_listener_free(l);
                return tls ? -EBADMSG : -EIO;   /* with TLS, most likely a bad certificate or key */
        }
        TAKE_FD(lfd);

        /* From here on http_listener_free() cleans up (and unlinks unix_path). */
        if (unix_path) {
                l->unix_path = strdup(unix_path);
                if (!l->unix_path) {
                        (void) unlink(unix_path);
                        http_listener_free(l);
                        return -ENOMEM;
                }
        }

        info = MHD_get_daemon_info(l->daemon, MHD_DAEMON_INFO_EPOLL_FD);
        if (!info) {
                http_listener_free(l);
                return -EIO;
        }
        r = sd_event_add_io(s->event, &l->io_source, info->epoll_fd, EPOLLIN, on_listener_io, l);
        if (r < 0) {
                http_listener_free(l);
                return r;
        }
        (void) sd_event_source_set_description(l->io_source, "http-mhd-epoll");

        /* Due at once: MHD adds the listening socket to its epoll set in its
         * first MHD_run(). */
        r = sd_event_add_time(s->event, &l->time_source, CLOCK_MONOTONIC, 0, 1000, on_listener_time, l);
        if (r < 0) {
                http_listener_free(l);
                return r;
        }
        (void) sd_event_source_set_description(l->time_source, "http-mhd-timeout");

        s->listeners[s->n_listeners++] = l;
        return 0;
}

int http_server_listen_unix(HttpServer *s, const char *path, mode_t mode, gid_t gid) {
        union {
                struct sockaddr sa;
                struct sockaddr_un un;
        } sa = { .un.sun_family = AF_UNIX };
        _cleanup_close_ int fd = -EBADF;
        int r;

        assert_return(s, -EINVAL);
        assert_return(!isempty(path) && path[0] == '/', -EINVAL);

        if (strlen(path) >= sizeof(sa.un.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.un.sun_path, path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;

        /* A socket file left by a previous zvmd that died. Unlinking it is
         * safe only because the caller holds the daemon-wide lock which makes
         * this process the only zvmd for this directory: no live server can
         * be listening on it. */
        if (unlink(path) < 0 && errno != ENOENT)
                return -errno;

        if (bind(fd, &sa.sa, sizeof(sa.un)) < 0)
                return -errno;

        /* Permissions before listen(): until then nobody can connect, so
         * there is no window with the umask's permissions. */
        if (chmod(path, mode) < 0 ||
            (gid != (gid_t) -1 && chown(path, (uid_t) -1, gid) < 0) ||
            listen(fd, SOMAXCONN) < 0) {
                r = -errno;
                (void) unlink(path);
                return r;
        }

        r = listener_start(s, TAKE_FD(fd), false, false, 0, NULL, NULL, NULL, path);
        if (r < 0)
                (void) unlink(path);            /* listener_start() did if it got that far; harmless */
        return r;
}

typedef union SocketAddress {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
} SocketAddress;

/* "1.2.3.4:port" or "[v6]:port"; no host names (no resolver in the daemon). */
static int parse_address(const char *address, int *ret_family, SocketAddress *ret_sa, socklen_t *ret_len) {
        _cleanup_free_ char *host = NULL;
        const char *port_str;
        uint32_t port;
        int r;

        if (address[0] == '[') {
                const char *e = strchr(address, ']');

                if (!e || e[1] != ':')
                        return -EINVAL;
                host = strndup(address + 1, (size_t) (e - address - 1));
                port_str = e + 2;
        } else {
                const char *e = strrchr(address, ':');

                if (!e)
                        return -EINVAL;
                host = strndup(address, (size_t) (e - address));
                port_str = e + 1;
        }
        if (!host)
                return -ENOMEM;

        r = safe_atou32(port_str, &port);
        if (r < 0 || port > 65535)
                return -EINVAL;

        memset(ret_sa, 0, sizeof(*ret_sa));
        if (address[0] == '[') {
                ret_sa->in6.sin6_family = AF_INET6;
                ret_sa->in6.sin6_port = htons((uint16_t) port);
                if (inet_pton(AF_INET6, host, &ret_sa->in6.sin6_addr) != 1)
                        return -EINVAL;
                *ret_family = AF_INET6;
                *ret_len = sizeof(ret_sa->in6);
        } else {
                ret_sa->in.sin_family = AF_INET;
                ret_sa->in.sin_port = htons((uint16_t) port);
                if (inet_pton(AF_INET, host, &ret_sa->in.sin_addr) != 1)
                        return -EINVAL;
                *ret_family = AF_INET;
                *ret_len = sizeof(ret_sa->in);
        }
        return 0;
}

int http_server_listen_tcp(HttpServer *s, const char *address, const HttpTls *tls, http_auth_fn auth,
                           void *auth_userdata) {
        SocketAddress sa, bound = {};
        socklen_t len, blen = sizeof(bound);
        _cleanup_close_ int fd = -EBADF;
        int family, port, one = 1, r;

        assert_return(s, -EINVAL);
        assert_return(address, -EINVAL);
        assert_return(auth, -EINVAL);
        assert_return(!tls || (tls->cert_pem && tls->key_pem), -EINVAL);

        r = parse_address(address, &family, &sa, &len);
        if (r < 0)
                return r;

        fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
                return -errno;
        if (family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
                return -errno;
        if (bind(fd, &sa.sa, len) < 0)
                return -errno;
        if (listen(fd, SOMAXCONN) < 0)
                return -errno;
        if (getsockname(fd, &bound.sa, &blen) < 0)
                return -errno;
        port = ntohs(family == AF_INET6 ? bound.in6.sin6_port : bound.in.sin_port);

        return listener_start(s, TAKE_FD(fd), true, family == AF_INET6, port, tls, auth, auth_userdata, NULL);
}

int http_server_tcp_port(HttpServer *s) {
        assert_return(s, -EINVAL);

        for (size_t i = s->n_listeners; i > 0; i--)
                if (s->listeners[i - 1]->tcp)
                        return s->listeners[i - 1]->port;
        return -ENXIO;
}

