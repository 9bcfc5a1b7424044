/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "fd-util.h"
#include "fileio.h"
#include "macro.h"
#include "string-util.h"
#include "tls-cert.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(EVP_PKEY *, EVP_PKEY_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(X509 *, X509_free);
DEFINE_TRIVIAL_CLEANUP_FUNC(BIO *, BIO_free);

static char *bio_to_string(BIO *b) {
        char *data = NULL;
        long n = BIO_get_mem_data(b, &data);

        return n > 0 ? strndup(data, (size_t) n) : NULL;
}

static int cert_add_ext(X509 *x, int nid, const char *value) {
        X509V3_CTX ctx;
        X509_EXTENSION *ext;
        int ok;

        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, x, x, NULL, NULL, 0);
        ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        if (!ext)
                return -EINVAL;
        ok = X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        return ok ? 0 : -ENOMEM;
}

/* A self-signed certificate for key. It is its own CA (CA:TRUE, keyCertSign),
 * so that a client may also trust it as a CA file (--ca) instead of pinning. */
static int cert_make(EVP_PKEY *key, X509 **ret) {
        _cleanup_(X509_freep) X509 *x = NULL;
        _cleanup_free_ char *san = NULL;
        char host[256] = "localhost";
        unsigned char serial[16];
        BIGNUM *bn;
        X509_NAME *name;
        bool dns_ok;
        int r;

        (void) gethostname(host, sizeof(host) - 1);
        x = X509_new();
        if (!x)
                return -ENOMEM;
        if (getentropy(serial, sizeof(serial)) < 0)
                return -errno;
        serial[0] &= 0x7f;                      /* positive */
        bn = BN_bin2bn(serial, sizeof(serial), NULL);
        if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x))) {
                BN_free(bn);
                return -ENOMEM;
        }
        BN_free(bn);

        name = X509_get_subject_name(x);
        if (!X509_set_version(x, 2) ||
            !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
            !X509_gmtime_adj(X509_getm_notAfter(x), (long) TLS_CERT_DAYS * 86400L) ||
            !X509_set_pubkey(x, key) ||
            !X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, (const unsigned char *) "zvmd", -1, -1, 0) ||
            !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *) host, -1, -1, 0) ||
            !X509_set_issuer_name(x, name))
                return -ENOMEM;

        /* A host name that is no valid DNS name is left out of the SAN. */
        dns_ok = !isempty(host) && !streq(host, "localhost") &&
                 host[strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")] == '\0';
        san = strjoin("DNS:localhost,IP:127.0.0.1,IP:::1", dns_ok ? ",DNS:" : "", dns_ok ? host : "");
        if (!san)
                return -ENOMEM;
        r = cert_add_ext(x, NID_basic_constraints, "critical,CA:TRUE,pathlen:0");
        if (r >= 0)
                r = cert_add_ext(x, NID_key_usage, "critical,digitalSignature,keyCertSign");
        if (r >= 0)
                r = cert_add_ext(x, NID_ext_key_usage, "serverAuth");
        if (r >= 0)
                r = cert_add_ext(x, NID_subject_alt_name, san);
        if (r < 0)
                return r;
        if (X509_sign(x, key, EVP_sha256()) <= 0)
                return -EIO;

        *ret = TAKE_PTR(x);
        return 0;
}

static int tls_cert_create(const char *dir, char **ret_cert_pem, char **ret_key_pem) {
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        _cleanup_(BIO_freep) BIO *kb = NULL, *cb = NULL;
        _cleanup_free_ char *cert = NULL, *kpem = NULL;
        int r;

        key = EVP_EC_gen("P-256");
        if (!key)
                return -EIO;
        r = cert_make(key, &x);
        if (r < 0)
                return r;

        kb = BIO_new(BIO_s_mem());
        cb = BIO_new(BIO_s_mem());
        if (!kb || !cb ||
            !PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) ||
            !PEM_write_bio_X509(cb, x))
                return -ENOMEM;
        kpem = bio_to_string(kb);
        cert = bio_to_string(cb);
        if (!kpem || !cert)
                return -ENOMEM;

        /* The key first: a crash in between leaves a key without a
         * certificate, which the next start refuses rather than silently
         * replacing (clients may have pinned nothing yet, but an operator
         * should look). */
        r = write_file_atomic(dir, TLS_KEY_FILE, kpem, strlen(kpem), 0600);
        if (r >= 0)
                r = write_file_atomic(dir, TLS_CERT_FILE, cert, strlen(cert), 0644);
        if (r < 0) {
                explicit_bzero(kpem, strlen(kpem));
                return r;
        }
        *ret_cert_pem = TAKE_PTR(cert);
        *ret_key_pem = TAKE_PTR(kpem);
        return 0;
}

int tls_cert_load(const char *cert_path, const char *key_path, char **ret_cert_pem, char **ret_key_pem) {
        _cleanup_free_ char *cert = NULL, *key = NULL;
        int r;

        r = read_full_file(cert_path, &cert, NULL, TLS_PEM_MAX);
        if (r < 0)
                return r;
        r = read_full_file(key_path, &key, NULL, TLS_PEM_MAX);
        if (r < 0)
                return r;
        *ret_cert_pem = TAKE_PTR(cert);
        *ret_key_pem = TAKE_PTR(key);
        return 0;
}

int tls_cert_load_or_create(const char *dir, char **ret_cert_pem, char **ret_key_pem, int *ret_created) {
        _cleanup_free_ char *cp = NULL, *kp = NULL;
        bool have_cert, have_key;

        assert_return(dir && ret_cert_pem && ret_key_pem, -EINVAL);

        cp = strjoin(dir, "/" TLS_CERT_FILE);
        kp = strjoin(dir, "/" TLS_KEY_FILE);
        if (!cp || !kp)
                return -ENOMEM;
        have_cert = access(cp, F_OK) >= 0;
        have_key = access(kp, F_OK) >= 0;
        if (have_cert != have_key)
                return -EUCLEAN;
        if (ret_created)
                *ret_created = !have_cert;
        if (have_cert)
                return tls_cert_load(cp, kp, ret_cert_pem, ret_key_pem);
        return tls_cert_create(dir, ret_cert_pem, ret_key_pem);
}

int tls_cert_fingerprint(const char *cert_pem, char **ret) {
        _cleanup_(BIO_freep) BIO *b = NULL;
        _cleanup_(X509_freep) X509 *x = NULL;
        unsigned char *der = NULL;
        unsigned char md[EVP_MAX_MD_SIZE];
        char b64[EVP_MAX_MD_SIZE * 2];
        unsigned mdlen = 0;
        int n;

        assert_return(cert_pem && ret, -EINVAL);

        b = BIO_new_mem_buf(cert_pem, -1);
        if (!b)
                return -ENOMEM;
        x = PEM_read_bio_X509(b, NULL, NULL, NULL);
        if (!x)
                return -EBADMSG;
        n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &der);
        if (n <= 0)
                return -EBADMSG;
        n = EVP_Digest(der, (size_t) n, md, &mdlen, EVP_sha256(), NULL);
        OPENSSL_free(der);
        if (n != 1)
                return -EIO;
        n = EVP_EncodeBlock((unsigned char *) b64, md, (int) mdlen);
        while (n > 0 && b64[n - 1] == '=')
                b64[--n] = '\0';
        *ret = strjoin("SHA256:", b64);
        return *ret ? 0 : -ENOMEM;
}
