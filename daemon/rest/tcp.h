/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The TCP listener: TLS by default (zvmd's own self-signed certificate
 * under <data>/tls/, made on first use, or the one given), plain HTTP only
 * when asked for explicitly; bearer tokens with roles.
 */

#include <stdbool.h>

#include "http-server.h"
#include "token-store.h"

typedef struct RestTcpOptions {
        const char *address;            /* "127.0.0.1:8007"; NULL: no TCP listener */
        const char *tls_cert;           /* PEM files given by the administrator, */
        const char *tls_key;            /* or both NULL: zvmd's own */
        bool plain_http;                /* no TLS (--plain-http) */
} RestTcpOptions;

/* Adds the TCP listener to http, its tokens checked against tokens; zvmd's
 * own certificate lives in <data_dir>/tls/. Takes the pieces rather than the
 * Rest object, so that this module and rest.c do not include each other. */
int rest_listen_tcp(HttpServer *http, TokenStore *tokens, const char *data_dir, const RestTcpOptions *o);
