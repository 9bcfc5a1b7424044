/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The TCP listener's TLS certificate: zvmd's own self-signed one, made on
 * first use, or one the administrator gives. OpenSSL's libcrypto (already
 * used for the token hashes) makes and reads it; libmicrohttpd's GnuTLS
 * serves it.
 *
 * The fingerprint clients pin is "SHA256:" + base64 (no padding) of the
 * SHA-256 of the certificate's SubjectPublicKeyInfo (DER), as ssh shows host
 * keys. Pinning the public key rather than the whole certificate lets a
 * certificate be renewed with the same key; it is also exactly what
 * libcurl's CURLOPT_PINNEDPUBLICKEY ("sha256//<base64>") checks.
 *
 * Never logs.
 */

#define TLS_CERT_FILE "cert.pem"
#define TLS_KEY_FILE "key.pem"
#define TLS_CERT_DAYS 3650
#define TLS_PEM_MAX (64U * 1024U)

/* Reads dir/cert.pem and dir/key.pem; if neither exists, makes an EC P-256
 * key (written 0600 first) and a self-signed certificate for "localhost",
 * the host name, 127.0.0.1 and ::1, valid TLS_CERT_DAYS days (0644). Only
 * one of the two present → -EUCLEAN (refuse to overwrite). *ret_created
 * (optional) says whether they were made now. dir must exist. */
int tls_cert_load_or_create(const char *dir, char **ret_cert_pem, char **ret_key_pem, int *ret_created);

/* Reads a certificate and key an administrator gave (PEM files). */
int tls_cert_load(const char *cert_path, const char *key_path, char **ret_cert_pem, char **ret_key_pem);

/* "SHA256:<base64 of sha256(SPKI)>" of the first certificate in cert_pem;
 * -EBADMSG if it does not parse. */
int tls_cert_fingerprint(const char *cert_pem, char **ret);
