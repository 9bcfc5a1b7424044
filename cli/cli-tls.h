/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * zvm's side of TLS to zvmd's TCP listener (https:// URLs). Three ways to
 * trust the server, in this order:
 *
 *   --insecure   no check at all (testing only; says so on stderr)
 *   --ca FILE    the usual: a certificate chain to FILE's CAs, with the host
 *                name checked
 *   (default)    pinning, as ssh does with known_hosts: the server's public
 *                key fingerprint ("SHA256:<base64>" of its SubjectPublicKeyInfo,
 *                the same zvmd logs at start) is kept per host:port in
 *                $XDG_CONFIG_HOME/zvm/known_hosts (~/.config/zvm/known_hosts;
 *                $ZVM_KNOWN_HOSTS overrides). On first contact zvm pins what
 *                the server presents and says so; afterwards libcurl aborts
 *                the handshake, before any request (and token) is sent, if
 *                the key differs, and zvm refuses with a message naming the
 *                file and line to remove if the change is intended.
 */

#include <curl/curl.h>

#include "zvm.h"

#define CLI_KNOWN_HOSTS_MAX (1024U * 1024U)

/* Configures curl for cli->url if it is https://; nothing for http://. */
int cli_tls_setup(const Cli *cli, CURL *curl);

/* Explains a TLS failure of a request (a pin mismatch, an unknown CA) and
 * returns the errno to exit with; 0 if code is no TLS failure. */
int cli_tls_log_error(const Cli *cli, CURLcode code, const char *errbuf);
