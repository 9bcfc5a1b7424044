/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cli-tls.h"
#include "fd-util.h"
#include "fileio.h"
#include "log.h"
#include "string-util.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(CURL *, curl_easy_cleanup);
DEFINE_TRIVIAL_CLEANUP_FUNC(CURLU *, curl_url_cleanup);

/* $ZVM_KNOWN_HOSTS, $XDG_CONFIG_HOME/zvm/known_hosts or ~/.config/zvm/known_hosts. */
static char *known_hosts_path(void) {
        const char *e = getenv("ZVM_KNOWN_HOSTS");

        if (!isempty(e))
                return strdup(e);
        e = getenv("XDG_CONFIG_HOME");
        if (!isempty(e))
                return strjoin(e, "/zvm/known_hosts");
        e = getenv("HOME");
        return strjoin(isempty(e) ? "/" : e, "/.config/zvm/known_hosts");
}

/* "host:port" of cli->url, the key of a known_hosts line. */
static int url_host_port(const char *url, char **ret) {
        _cleanup_(curl_url_cleanupp) CURLU *u = curl_url();
        char *host = NULL, *port = NULL;

        if (!u || curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
                curl_free(host);
                return -EINVAL;
        }
        *ret = strjoin(host, ":", port);
        curl_free(host);
        curl_free(port);
        return *ret ? 0 : -ENOMEM;
}

/* "SHA256:<base64, no padding>" of the certificate's public key, exactly as
 * zvmd's tls_cert_fingerprint() (daemon/http/tls-cert.c) computes it. */
static int pem_fingerprint(const char *pem, char **ret) {
        BIO *b = BIO_new_mem_buf(pem, -1);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        unsigned char md[EVP_MAX_MD_SIZE], *der = NULL;
        char b64[EVP_MAX_MD_SIZE * 2];
        unsigned mdlen = 0;
        int n = x ? i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der) : -1;
        bool ok = n > 0 && EVP_Digest(der, (size_t) n, md, &mdlen, EVP_sha256(), NULL) == 1;

        OPENSSL_free(der);
        X509_free(x);
        BIO_free(b);
        if (!ok)
                return -EBADMSG;
        n = EVP_EncodeBlock((unsigned char *) b64, md, (int) mdlen);
        while (n > 0 && b64[n - 1] == '=')
                b64[--n] = '\0';
        *ret = strjoin("SHA256:", b64);
        return *ret ? 0 : -ENOMEM;
}

/* The pinned fingerprint of key in the known_hosts file; -ENOENT if none. */
static int known_hosts_lookup(const char *path, const char *key, char **ret) {
        _cleanup_free_ char *buf = NULL;
        int r;

        r = read_full_file(path, &buf, NULL, CLI_KNOWN_HOSTS_MAX);
        if (r < 0)
                return r;
        for (char *line = buf, *next; line && *line; line = next) {
                const char *fp;

                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                fp = startswith(line, key);
                if (fp && *fp == ' ') {
                        *ret = strdup(strstrip((char *) fp));
                        return *ret ? 0 : -ENOMEM;
                }
        }
        return -ENOENT;
}

static int known_hosts_add(const char *path, const char *key, const char *fp) {
        _cleanup_free_ char *old = NULL, *data = NULL, *dir = NULL;
        const char *slash = strrchr(path, '/');
        int r;

        r = read_full_file(path, &old, NULL, CLI_KNOWN_HOSTS_MAX);
        if (r < 0 && r != -ENOENT)
                return r;
        dir = slash && slash != path ? strndup(path, (size_t) (slash - path)) : strdup(slash ? "/" : ".");
        data = strjoin(strempty(old), key, " ", fp, "\n");
        if (!dir || !data)
                return -ENOMEM;
        r = mkdir_p(dir, 0700);
        if (r < 0)
                return r;
        return write_file_atomic(dir, slash ? slash + 1 : path, data, strlen(data), 0600);
}

/* First contact: a TLS handshake without any check, only to read the
 * server's certificate; no request (and no token) is sent. */
static int tls_probe_fingerprint(const Cli *cli, char **ret) {
        _cleanup_(curl_easy_cleanupp) CURL *curl = curl_easy_init();
        struct curl_certinfo *ci = NULL;

        if (!curl)
                return -ENOMEM;
        if (curl_easy_setopt(curl, CURLOPT_URL, cli->url) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_CONNECT_ONLY, 1L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long) CLI_CONNECT_TIMEOUT_SEC * 1000L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L) != CURLE_OK ||
            curl_easy_setopt(curl, CURLOPT_CERTINFO, 1L) != CURLE_OK)
                return -EIO;
        if (curl_easy_perform(curl) != CURLE_OK)
                return -EHOSTUNREACH;
        if (curl_easy_getinfo(curl, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci || ci->num_of_certs < 1)
                return -EBADMSG;
        for (struct curl_slist *l = ci->certinfo[0]; l; l = l->next) {
                const char *pem = startswith(l->data, "Cert:");
                if (pem)
                        return pem_fingerprint(pem, ret);
        }
        return -EBADMSG;
}

int cli_tls_setup(const Cli *cli, CURL *curl) {
        _cleanup_free_ char *path = NULL, *key = NULL, *fp = NULL, *pin = NULL;
        int r;

        if (!cli->url || !startswith(cli->url, "https://"))
                return 0;

        if (cli->insecure) {
                log_warning("--insecure: not checking zvmd's TLS certificate; anyone in between can read the token.");
                return curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L) == CURLE_OK &&
                       curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L) == CURLE_OK ? 0 : -EIO;
        }
        if (cli->ca_file)
                return curl_easy_setopt(curl, CURLOPT_CAINFO, cli->ca_file) == CURLE_OK ? 0 : -EIO;

        path = known_hosts_path();
        if (!path || url_host_port(cli->url, &key) < 0)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "cannot tell host and port of %s", cli->url);
        r = known_hosts_lookup(path, key, &fp);
        if (r == -ENOENT) {
                r = tls_probe_fingerprint(cli, &fp);
                if (r == -EHOSTUNREACH)
                        return 0;       /* the request itself will say why */
                if (r < 0)
                        return log_error_errno(r, "cannot read zvmd's TLS certificate at %s: %m", key);
                r = known_hosts_add(path, key, fp);
                if (r < 0)
                        return log_error_errno(r, "cannot write %s: %m", path);
                log_notice("Pinned zvmd's TLS key for %s: %s (in %s). Check it against the fingerprint zvmd logged at start.",
                           key, fp, path);
        } else if (r < 0)
                return log_error_errno(r, "cannot read %s: %m", path);

        /* The pin replaces the CA check: a self-signed certificate names no
         * CA, and the key is what identifies this zvmd. */
        pin = strjoin("sha256//", startswith(fp, "SHA256:") ?: fp, "=");
        if (!pin)
                return log_oom();
        /* libcurl wants base64 with its padding: 32 bytes → one '='. */
        return curl_easy_setopt(curl, CURLOPT_PINNEDPUBLICKEY, pin) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L) == CURLE_OK &&
               curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L) == CURLE_OK ? 0 : -EIO;
}

int cli_tls_log_error(const Cli *cli, CURLcode code, const char *errbuf) {
        _cleanup_free_ char *path = NULL, *key = NULL, *fp = NULL;

        switch (code) {
        case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
                path = known_hosts_path();
                (void) url_host_port(cli->url, &key);
                if (path && key)
                        (void) known_hosts_lookup(path, key, &fp);
                log_error("zvmd at %s presents a TLS key that is NOT the one pinned for it in %s (%s). "
                          "Someone may be intercepting the connection; nothing was sent. "
                          "If zvmd's certificate was replaced on purpose, remove the line for %s from that file.",
                          strnull(key), strnull(path), strnull(fp), strnull(key));
                return -EKEYREJECTED;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CERTPROBLEM:
                log_error("TLS with zvmd at %s failed: %s%s", cli->url, !isempty(errbuf) ? errbuf : curl_easy_strerror(code),
                          code == CURLE_SSL_CONNECT_ERROR ? " (if zvmd runs with --plain-http, use an http:// URL)" : "");
                return -EKEYREJECTED;
        default:
                return 0;
        }
}
