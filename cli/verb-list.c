/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "cli-http.h"
#include "cli-output.h"
#include "cli-util.h"
#include "cli-vm.h"
#include "log.h"
#include "string-util.h"

/* zvm list [--state S] [--tag T] [--json]: the filters apply here, to
 * GET /vms (zvmd has no query for them; the list is small). */
int verb_list(Cli *cli, int argc, char *argv[]) {
        enum { ARG_STATE = ARG_VERB_FIRST, ARG_TAG };
        static const struct option options[] = {
                VERB_COMMON_OPTIONS,
                { "state", required_argument, NULL, ARG_STATE },
                { "tag",   required_argument, NULL, ARG_TAG },
                {}
        };
        static const char *const states[] = { "stopped", "starting", "running", "stopping", "crashed" };
        _cleanup_(json_object_putp) json_object *vms = NULL, *shown = NULL;
        const char *state = NULL, *tag = NULL;
        bool known = false;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case ARG_STATE:
                        state = optarg;
                        break;
                case ARG_TAG:
                        tag = optarg;
                        break;
                default:
                        r = verb_common_option(cli, c);
                        if (r != 0)
                                return r;
                }
        r = verb_check_args(cli, argc, argv, 0, 0);
        if (r < 0)
                return r;

        for (size_t i = 0; state && i < ELEMENTSOF(states); i++)
                known = known || streq(state, states[i]);
        if (state && !known)
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL),
                                       "invalid --state '%s' (stopped, starting, running, stopping or crashed)", state);
        if (tag && isempty(tag))
                return log_error_errno(SYNTHETIC_ERRNO(EINVAL), "--tag needs a tag");

        r = cli_http_call(cli, "GET", "/vms", NULL, &vms);
        if (r < 0)
                return r;
        r = cli_vm_list_filter(vms, state, tag, &shown);
        if (r < 0)
                return log_error_errno(r == -ENOMEM ? r : SYNTHETIC_ERRNO(EBADMSG),
                                       "zvmd sent an answer zvm does not understand: %m");
        return cli_print(cli, shown, cli_output_vm_list);
}
