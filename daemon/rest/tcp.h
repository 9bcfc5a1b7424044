/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The TCP listener: TLS by default (zvmd's own self-signed certificate
 * under <data>/tls/, made on first use, or the one given), plain HTTP only
 * when asked for explicitly; bearer tokens with roles.
 */

#include <stdbool.h>

#include "rest.h"

typedef struct RestTcpOptions {
        const char *address;            /* "127.0.0.1:8007"; NULL: no TCP listener */
        const char *tls_cert;           /* PEM files given by the administrator, */
        const char *tls_key;            /* or both NULL: zvmd's own */
        bool plain_http;                /* no TLS (--plain-http) */
} RestTcpOptions;

int rest_listen_tcp(Rest *rest, const RestTcpOptions *o);
