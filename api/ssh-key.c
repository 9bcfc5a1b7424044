/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base64.h"
#include "macro.h"
#include "ssh-key.h"
#include "string-util.h"

static const char *const key_types[] = {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "sk-ssh-ed25519@openssh.com",
        "sk-ecdsa-sha2-nistp256@openssh.com",
        "ssh-ed25519-cert-v01@openssh.com",
        "ssh-rsa-cert-v01@openssh.com",
};

/* Host keys are plain keys: a certificate in known_hosts would need the
 * @cert-authority marker, which the guest never gets to choose. */
static const char *const host_key_types[] = {
        "ssh-ed25519",
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
};

static bool type_in(const char *const *types, size_t n_types, const char *t, size_t n) {
        for (size_t i = 0; i < n_types; i++)
                if (strlen(types[i]) == n && strncmp(types[i], t, n) == 0)
                        return true;
        return false;
}

static bool key_type_known(const char *t, size_t n) {
        return type_in(key_types, ELEMENTSOF(key_types), t, n);
}

/* Whether b64 (b64_len bytes) is padded base64 of an SSH key blob that
 * starts with the same type name. 0, -EINVAL with a reason, -ENOMEM. */
static int key_blob_check(const char *type, size_t type_len, const char *b64, size_t b64_len,
                          const char **ret_reason) {
        _cleanup_free_ unsigned char *blob = NULL;
        _cleanup_free_ char *copy = NULL;
        size_t size = 0;
        uint32_t n;

        if (b64_len == 0)
                return *ret_reason = "has no key data after the key type", -EINVAL;
        copy = strndup(b64, b64_len);
        if (!copy)
                return -ENOMEM;
        if (base64_decode(copy, &blob, &size) < 0 || size < 4)
                return *ret_reason = "has key data that is not base64", -EINVAL;
        /* The blob starts with the type again, as an SSH string. */
        n = (uint32_t) blob[0] << 24 | (uint32_t) blob[1] << 16 | (uint32_t) blob[2] << 8 | blob[3];
        if (n != type_len || size < 4 + (size_t) n || memcmp(blob + 4, type, type_len) != 0)
                return *ret_reason = "has key data that does not match its key type", -EINVAL;
        return 0;
}

/* Skips authorized_keys options ("no-pty,command=\"a b\" ...") up to the
 * blank before the key type. Returns NULL if a quote is left open. */
static const char *skip_options(const char *p) {
        bool quoted = false;

        for (; *p; p++) {
                if (*p == '\\' && quoted && p[1])
                        p++;
                else if (*p == '"')
                        quoted = !quoted;
                else if (!quoted && (*p == ' ' || *p == '\t'))
                        break;
        }
        return quoted ? NULL : p;
}

int ssh_pubkey_check(const char *line, const char **ret_reason) {
        const char *type = line, *p;
        size_t type_len;

        if (strlen(line) >= SSH_KEY_LINE_MAX)
                return *ret_reason = "is longer than 8 KiB", -EINVAL;
        for (p = line; *p; p++)
                if ((unsigned char) *p < 0x20 && *p != '\t')
                        return *ret_reason = "contains a control character", -EINVAL;
        if (strstr(line, "PRIVATE KEY"))
                return *ret_reason = "is a private key: give the .pub file", -EINVAL;

        type_len = strcspn(type, " \t");
        if (!key_type_known(type, type_len)) {
                /* Not a type: options first, then the type. */
                p = skip_options(line);
                if (!p || !*p)
                        return *ret_reason = "is not an OpenSSH public key (TYPE BASE64 [COMMENT])", -EINVAL;
                type = p + strspn(p, " \t");
                type_len = strcspn(type, " \t");
                if (!key_type_known(type, type_len))
                        return *ret_reason = "has an unknown key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-*, sk-*)", -EINVAL;
        }
        p = type + type_len;
        p += strspn(p, " \t");
        return key_blob_check(type, type_len, p, strcspn(p, " \t"), ret_reason);
}

int ssh_host_key_check(const char *line, const char **ret_reason) {
        static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
        const char *sp, *b64;
        size_t len = strnlen(line, SSH_HOST_KEY_LINE_MAX);

        if (len >= SSH_HOST_KEY_LINE_MAX)
                return *ret_reason = "is longer than 4 KiB", -EINVAL;
        sp = strchr(line, ' ');
        if (!sp || !type_in(host_key_types, ELEMENTSOF(host_key_types), line, (size_t) (sp - line)))
                return *ret_reason = "is not TYPE BASE64 with a host key type (ssh-ed25519, ssh-rsa, ecdsa-sha2-*)",
                       -EINVAL;
        b64 = sp + 1;
        if (b64[strspn(b64, b64_chars)] != '\0')
                return *ret_reason = "carries more than TYPE BASE64 (options, a comment, other characters)", -EINVAL;
        return key_blob_check(line, (size_t) (sp - line), b64, strlen(b64), ret_reason);
}

int ssh_keys_decode(const char *value, char ***ret, char **ret_reason) {
        _cleanup_strv_free_ char **keys = NULL;
        _cleanup_free_ char *text = NULL;
        char *line, *save = NULL;
        unsigned lineno = 0;
        size_t bad = 0, n_keys = 0;
        ssize_t n;

        text = malloc(strlen(value) + 1);
        if (!text)
                return -ENOMEM;
        n = percent_decode(value, strlen(value), text, &bad);
        if (n < 0)
                return asprintf(ret_reason, "bad percent-encoding at byte %zu", bad) < 0 ? -ENOMEM : -EINVAL;
        if (strlen(text) != (size_t) n)
                return (*ret_reason = strdup("contains a NUL byte")) ? -EINVAL : -ENOMEM;

        for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                const char *reason = NULL;
                int r;

                lineno++;
                line = strstrip(line);
                if (isempty(line) || line[0] == '#')
                        continue;
                r = ssh_pubkey_check(line, &reason);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return asprintf(ret_reason, "key %u %s", lineno, reason) < 0 ? -ENOMEM : -EINVAL;
                if (++n_keys > SSH_KEYS_MAX)
                        return asprintf(ret_reason, "more than %u keys", SSH_KEYS_MAX) < 0 ? -ENOMEM : -EINVAL;
                if (strv_extend(&keys, line) < 0)
                        return -ENOMEM;
        }
        if (!keys) {
                keys = calloc(1, sizeof(char *));
                if (!keys)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(keys);
        return 0;
}

char *ssh_keys_encode(const char *text) {
        static const char plain[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~@+/=-";
        char *out = malloc(strlen(text) * 3 + 1), *q = out;

        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) text; *p; p++)
                if (strchr(plain, *p))
                        *q++ = (char) *p;
                else
                        q += sprintf(q, "%%%02X", *p);
        *q = '\0';
        return out;
}
