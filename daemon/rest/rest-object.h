/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The Rest object: what every route handler gets as ctx (routes.h), and
 * what rest.c creates (rest.h). Its own header so that neither of those
 * two includes the other. */

#include <stddef.h>

typedef struct Manager Manager;
typedef struct HttpServer HttpServer;
typedef struct HttpStream HttpStream;
typedef struct TokenStore TokenStore;

#define REST_STREAMS_MAX 64U            /* /events subscribers */

typedef struct Rest {
        Manager *manager;               /* not owned */
        HttpServer *http;
        TokenStore *tokens;
        HttpStream **streams;           /* /events subscribers */
        size_t n_streams;
} Rest;
