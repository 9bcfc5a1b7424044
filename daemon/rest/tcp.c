/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* The TCP listener's setup; see tcp.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "http-server.h"
#include "log.h"
#include "string-util.h"
#include "tcp.h"
#include "tls-cert.h"
#include "token-store.h"

/* The certificate and key to serve, logging what went wrong. */
static int tcp_tls_load(const char *data_dir, const RestTcpOptions *o, char **ret_cert, char **ret_key) {
        _cleanup_free_ char *dir = NULL;
        int created = 0, r;

        if (o->tls_cert || o->tls_key) {
                if (!o->tls_cert || !o->tls_key)
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--tls-cert and --tls-key go together");
                r = tls_cert_load(o->tls_cert, o->tls_key, ret_cert, ret_key);
                if (r < 0)
                        return log_error_errno(r, "Failed to read %s / %s: %m", o->tls_cert, o->tls_key);
                return 0;
        }

        dir = strjoin(data_dir, "/tls");
        if (!dir)
                return log_oom();
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return log_error_errno(r, "Failed to create %s: %m", dir);
        r = tls_cert_load_or_create(dir, ret_cert, ret_key, &created);
        if (r == -EUCLEAN)
                return log_error_errno(r, "%s holds only one of " TLS_CERT_FILE " and " TLS_KEY_FILE
                                       "; remove the other to make a new pair", dir);
        if (r < 0)
                return log_error_errno(r, "Failed to %s the TLS certificate in %s: %m",
                                       created ? "create" : "read", dir);
        if (created)
                log_notice("Created a self-signed TLS certificate in %s", dir);
        return 0;
}

int rest_listen_tcp(HttpServer *http, TokenStore *tokens, const char *data_dir, const RestTcpOptions *o) {
        _cleanup_free_ char *cert = NULL, *fp = NULL;
        char *key = NULL;
        int r;

        if (!o || !o->address)
                return 0;

        if (o->plain_http) {
                if (o->tls_cert || o->tls_key)
                        return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--plain-http excludes --tls-cert/--tls-key");
                log_warning("Serving %s over plain HTTP (--plain-http): tokens and data travel in clear.",
                            o->address);
                r = http_server_listen_tcp(http, o->address, NULL, token_store_auth, tokens);
                if (r < 0)
                        return log_error_errno(r, "Failed to listen on %s: %m", o->address);
                return 0;
        }

        r = tcp_tls_load(data_dir, o, &cert, &key);
        if (r < 0)
                return r;
        r = tls_cert_fingerprint(cert, &fp);
        if (r < 0) {
                erase_and_free(key);
                return log_error_errno(r, "The TLS certificate does not parse: %m");
        }
        r = http_server_listen_tcp(http, o->address, &(HttpTls) { .cert_pem = cert, .key_pem = key },
                                   token_store_auth, tokens);
        erase_and_free(key);
        if (r == -EOPNOTSUPP)
                return log_error_errno(r, "libmicrohttpd was built without TLS; use --plain-http only on a trusted network");
        if (r < 0)
                return log_error_errno(r, "Failed to listen on %s with TLS: %m", o->address);
        log_info("TLS on %s, certificate key fingerprint %s", o->address, fp);
        return 0;
}
