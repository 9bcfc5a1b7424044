/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * api/ssh-key: the "sshkeys" config value (from the API, the CLI or a
 * hand-edited config) and single authorized_keys lines (the guest's host
 * keys in READY are checked the same way).
 *
 * Input: a percent-encoded sshkeys value; also checked as one raw line.
 *
 * Properties:
 *   - a refused value has a reason, an accepted one gives at most
 *     SSH_KEYS_MAX lines, each one line that ssh_pubkey_check() accepts;
 *   - round trip: the accepted lines, joined by "\n" and percent-encoded
 *     with ssh_keys_encode(), decode to the same lines;
 *   - ssh_keys_encode() emits only the characters a config value may hold;
 *   - ssh_host_key_check() (a guest's host key from READY, before it goes
 *     into known_hosts): accepted only as "TYPE BASE64" shorter than
 *     SSH_HOST_KEY_LINE_MAX, one blank, no control character, and then also
 *     a valid authorized_keys line.
 */
#include <errno.h>

#include "fuzz.h"
#include "ssh-key.h"
#include "string-util.h"

static void check_round_trip(char **keys) {
        _cleanup_strv_free_ char **back = NULL;
        _cleanup_free_ char *joined = NULL, *enc = NULL, *reason = NULL;
        int r;

        joined = strv_join(keys, "\n");
        if (!joined)
                return;
        enc = ssh_keys_encode(joined);
        if (!enc)
                return;
        for (const char *p = enc; *p; p++)
                FUZZ_CHECK((unsigned char) *p > 0x20 && (unsigned char) *p < 0x7f);
        r = ssh_keys_decode(enc, &back, &reason);
        if (r == -ENOMEM)
                return;
        FUZZ_CHECK(r == 0);
        FUZZ_CHECK(strv_length(back) == strv_length(keys));
        for (size_t i = 0; keys[i]; i++)
                FUZZ_CHECK(streq(keys[i], back[i]));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_strv_free_ char **keys = NULL;
        _cleanup_free_ char *text = NULL, *reason = NULL;
        const char *why = NULL;
        int r;

        text = fuzz_strndup(data, size);
        if (!text)
                return 0;

        r = ssh_pubkey_check(text, &why);
        FUZZ_CHECK(r == 0 || r == -ENOMEM || (r == -EINVAL && why));

        why = NULL;
        r = ssh_host_key_check(text, &why);
        FUZZ_CHECK(r == 0 || r == -ENOMEM || (r == -EINVAL && why));
        if (r == 0) {
                const char *sp = strchr(text, ' ');

                FUZZ_CHECK(size < SSH_HOST_KEY_LINE_MAX && sp && !strchr(sp + 1, ' '));
                for (const char *p = text; *p; p++)
                        FUZZ_CHECK((unsigned char) *p >= 0x20 && (unsigned char) *p < 0x7f);
                FUZZ_CHECK(ssh_pubkey_check(text, &why) == 0);
        }

        r = ssh_keys_decode(text, &keys, &reason);
        if (r < 0) {
                FUZZ_CHECK(IN_SET(r, -EINVAL, -ENOMEM));
                FUZZ_CHECK(r == -ENOMEM || reason);
                return 0;
        }
        FUZZ_CHECK(keys && strv_length(keys) <= SSH_KEYS_MAX);
        STRV_FOREACH(k, keys) {
                FUZZ_CHECK(!strchr(*k, '\n'));
                FUZZ_CHECK(ssh_pubkey_check(*k, &why) == 0);
        }
        check_round_trip(keys);
        return 0;
}
