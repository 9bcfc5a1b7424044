/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * libcurl's multi interface driven by an sd-event loop (no threads, no
 * blocking): curl tells us which sockets to watch and when its timer is due
 * (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION) and we call
 * curl_multi_socket_action() from the loop. The caller configures each easy
 * handle itself (URL, callbacks, limits, an already-connected socket, …);
 * this file only runs the transfers and reports each one's end once.
 *
 * Ownership: after http_client_add() the transfer belongs to the client
 * until done runs (from the loop, never from inside http_client_add() or
 * the caller's curl callbacks) or http_client_remove() is called; the easy
 * handle itself stays the caller's, who cleans it up after either.
 * http_client_free() removes what is still running without calling done.
 *
 * Never logs above debug.
 */

#include <curl/curl.h>
#include <systemd/sd-event.h>

#include "macro.h"

typedef struct HttpClient HttpClient;

/* result: curl's verdict on the transfer (CURLE_OK when it completed). */
typedef void (*http_client_done_fn)(CURL *easy, CURLcode result, void *userdata);

int http_client_new(sd_event *e, HttpClient **ret);
HttpClient *http_client_free(HttpClient *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(HttpClient *, http_client_free);

/* Starts the transfer; done(easy, result, userdata) is called once when it
 * ends. fd >= 0: a connected stream socket (non-blocking, O_CLOEXEC) that
 * the transfer uses instead of connecting (CURLOPT_OPENSOCKETFUNCTION and
 * CURLOPT_SOCKOPTFUNCTION are set here; any URL host works, an IP literal
 * spares a lookup); it is taken in every case, also on failure. The easy
 * handle's CURLOPT_PRIVATE is used here. */
int http_client_add(HttpClient *c, CURL *easy, int fd, http_client_done_fn done, void *userdata);
/* Stops a transfer whose done has not run; done never runs. */
void http_client_remove(HttpClient *c, CURL *easy);
/* Transfers running now. */
unsigned http_client_running(const HttpClient *c);
/* Kicks the loop after curl_easy_pause(…, CURLPAUSE_CONT) from outside a
 * curl callback, so that curl looks at the handle again soon. */
void http_client_wake(HttpClient *c);
