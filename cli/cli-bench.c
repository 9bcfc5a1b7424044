/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <math.h>
#include <stdio.h>

#include "cli-bench.h"
#include "cli-output.h"
#include "cli-power.h"
#include "cli-text.h"
#include "cli-vm.h"
#include "log.h"
#include "string-util.h"

typedef struct BenchLevel {
        unsigned concurrency, ok, failed;
        char *first_error;
        double prompt_tps, gen_tps;             /* means over the successful requests */
        double ttft_p50, ttft_p95, e2e_p50, e2e_p95;    /* seconds */
        double prompt_tokens, gen_tokens;       /* means, as the server counted them */
        double wall, total_tps;                 /* all tokens of the level / its wall time */
        double watts, wh_per_query;             /* NaN: too short to estimate */
        double cpu_seconds;                     /* the host's busy CPU-seconds in the level */
        PowerSource source;
} BenchLevel;

static void bench_level_done(BenchLevel *l) {
        l->first_error = mfree(l->first_error);
}

/* isl token ids that no two requests share a prefix of, so that no
 * server-side prompt cache turns prompt processing into a lookup. Ids
 * 3..258 exist in every vocabulary worth benchmarking (past the special
 * tokens; the byte tokens of SPM vocabularies). */
static json_object *bench_prompt(unsigned isl, unsigned seed) {
        json_object *a = json_object_new_array_ext((int) isl);

        for (unsigned k = 0; a && k < isl; k++)
                if (json_object_array_add(a, json_object_new_int((int) (3 + (seed * 97U + k * 31U) % 256U))) < 0)
                        return json_object_put(a), NULL;
        return a;
}

static int bench_body(const OaiTarget *t, const BenchOptions *o, unsigned seed, json_object **ret) {
        _cleanup_(json_object_putp) json_object *b = json_object_new_object();
        json_object *so = json_object_new_object();

        if (!b || !so || json_object_object_add(b, "stream_options", so) < 0) {
                json_object_put(so);
                return log_oom();
        }
        if (json_object_object_add(so, "include_usage", json_object_new_boolean(true)) < 0 ||
            json_object_object_add(b, "model", json_object_new_string(t->model)) < 0 ||
            json_object_object_add(b, "prompt", bench_prompt(o->isl, seed)) < 0 ||
            json_object_object_add(b, "max_tokens", json_object_new_int64(o->osl)) < 0 ||
            json_object_object_add(b, "stream", json_object_new_boolean(true)) < 0 ||
            /* llama-server's: exactly osl tokens, and no prompt cache. */
            json_object_object_add(b, "ignore_eos", json_object_new_boolean(true)) < 0 ||
            json_object_object_add(b, "cache_prompt", json_object_new_boolean(false)) < 0 ||
            json_object_object_add(b, "temperature", json_object_new_double(0)) < 0)
                return log_oom();
        *ret = TAKE_PTR(b);
        return 0;
}

/* One request's rates: the server's timings, else from the stream's clock
 * (prompt: its tokens over the time to the first token; generation: the
 * tokens after the first over the time after it). */
static void bench_rates(const OaiRequest *req, double *prompt_tps, double *gen_tps) {
        double ttft = (double) (req->first_token_usec - req->start_usec) / 1e6;
        double rest = (double) (req->end_usec - req->first_token_usec) / 1e6;
        double pn = oai_request_number(req, "usage", "prompt_tokens");
        double gn = oai_request_number(req, "usage", "completion_tokens");

        *prompt_tps = oai_request_number(req, "timings", "prompt_per_second");
        if (*prompt_tps < 0)
                *prompt_tps = pn > 0 && ttft > 0 ? pn / ttft : 0;
        *gen_tps = oai_request_number(req, "timings", "predicted_per_second");
        if (*gen_tps < 0)
                *gen_tps = gn > 1 && rest > 0 ? (gn - 1) / rest : 0;
}

static int bench_level_stats(const Cli *cli, OaiRequest **reqs, size_t n, const PowerSample *p0,
                             const PowerSample *p1, const BenchOptions *o, BenchLevel *l) {
        _cleanup_free_ double *ttft = calloc(n, sizeof(double)), *e2e = calloc(n, sizeof(double));
        double tokens = 0;

        if (!ttft || !e2e)
                return log_oom();
        for (size_t i = 0; i < n; i++) {
                double p, g;

                if (oai_request_error(cli, reqs[i], l->first_error ? NULL : &l->first_error) < 0 ||
                    reqs[i]->text_chunks == 0) {
                        if (!l->first_error)
                                l->first_error = strdup("no tokens in the answer");
                        l->failed++;
                        continue;
                }
                bench_rates(reqs[i], &p, &g);
                ttft[l->ok] = (double) (reqs[i]->first_token_usec - reqs[i]->start_usec) / 1e6;
                e2e[l->ok] = (double) (reqs[i]->end_usec - reqs[i]->start_usec) / 1e6;
                l->prompt_tps += p;
                l->gen_tps += g;
                l->prompt_tokens += MAX(oai_request_number(reqs[i], "usage", "prompt_tokens"), 0.0);
                l->gen_tokens += MAX(oai_request_number(reqs[i], "usage", "completion_tokens"), 0.0);
                l->ok++;
        }
        tokens = l->prompt_tokens + l->gen_tokens;
        if (l->ok > 0) {
                l->prompt_tps /= l->ok;
                l->gen_tps /= l->ok;
                l->prompt_tokens /= l->ok;
                l->gen_tokens /= l->ok;
        }
        l->ttft_p50 = stats_percentile(ttft, l->ok, 50);
        l->ttft_p95 = stats_percentile(ttft, l->ok, 95);
        l->e2e_p50 = stats_percentile(e2e, l->ok, 50);
        l->e2e_p95 = stats_percentile(e2e, l->ok, 95);
        l->wall = (double) (p1->usec - p0->usec) / 1e6;
        l->total_tps = l->wall > 0 ? tokens / l->wall : 0;
        l->watts = power_watts(p0, p1, o->cpu_watts, &l->source);
        l->cpu_seconds = power_cpu_seconds(p0, p1);
        l->wh_per_query = isnan(l->watts) ? NAN : stats_wh_per_query(l->watts, l->total_tps, o->isl, o->osl);
        return 0;
}

static int bench_level(const Cli *cli, const OaiTarget *t, const BenchOptions *o, unsigned level, BenchLevel *l,
                       const volatile sig_atomic_t *stop) {
        OaiRequest **reqs = calloc(o->requests, sizeof(OaiRequest *));
        PowerSample p0, p1;
        int r = 0;

        if (!reqs)
                return log_oom();
        l->concurrency = o->concurrency[level];
        for (unsigned i = 0; i < o->requests && r >= 0; i++) {
                _cleanup_(json_object_putp) json_object *body = NULL;

                r = bench_body(t, o, level * o->requests + i + 1, &body);
                if (r >= 0)
                        r = oai_request_new(cli, t, "/v1/completions", body, NULL, NULL, &reqs[i]);
        }
        if (r >= 0)
                r = power_sample(&p0);
        if (r >= 0)
                r = oai_run(reqs, o->requests, l->concurrency, stop);
        if (r >= 0)
                r = power_sample(&p1);
        if (r >= 0 && *stop)
                r = -ECANCELED;
        if (r >= 0)
                r = bench_level_stats(cli, reqs, o->requests, &p0, &p1, o, l);
        for (unsigned i = 0; i < o->requests; i++)
                oai_request_free(reqs[i]);
        free(reqs);
        return r;
}

/* null for NaN: JSON has no NaN. */
static json_object *json_double_or_null(double v) {
        return isnan(v) ? NULL : json_object_new_double(v);
}

static json_object *bench_level_json(const BenchLevel *l) {
        json_object *o = json_object_new_object(), *e = json_object_new_object();

        if (!o || !e) {
                json_object_put(o);
                json_object_put(e);
                return NULL;
        }
        json_object_object_add(o, "concurrency", json_object_new_int64(l->concurrency));
        json_object_object_add(o, "ok", json_object_new_int64(l->ok));
        json_object_object_add(o, "failed", json_object_new_int64(l->failed));
        json_object_object_add(o, "first_error", l->first_error ? json_object_new_string(l->first_error) : NULL);
        json_object_object_add(o, "prompt_tokens", json_object_new_double(l->prompt_tokens));
        json_object_object_add(o, "generated_tokens", json_object_new_double(l->gen_tokens));
        json_object_object_add(o, "prompt_tokens_per_sec", json_object_new_double(l->prompt_tps));
        json_object_object_add(o, "generated_tokens_per_sec", json_object_new_double(l->gen_tps));
        json_object_object_add(o, "ttft_p50_sec", json_object_new_double(l->ttft_p50));
        json_object_object_add(o, "ttft_p95_sec", json_object_new_double(l->ttft_p95));
        json_object_object_add(o, "latency_p50_sec", json_object_new_double(l->e2e_p50));
        json_object_object_add(o, "latency_p95_sec", json_object_new_double(l->e2e_p95));
        json_object_object_add(o, "wall_sec", json_object_new_double(l->wall));
        json_object_object_add(o, "total_tokens_per_sec", json_object_new_double(l->total_tps));
        json_object_object_add(e, "watts", json_double_or_null(l->watts));
        json_object_object_add(e, "source", json_object_new_string(power_source_to_string(l->source)));
        json_object_object_add(e, "cpu_seconds", json_object_new_double(l->cpu_seconds));
        json_object_object_add(e, "joules_per_token", json_double_or_null(l->total_tps > 0 ? l->watts / l->total_tps :
                                                                          isnan(l->watts) ? NAN : 0));
        json_object_object_add(e, "wh_per_query", json_double_or_null(l->wh_per_query));
        json_object_object_add(o, "energy", e);
        return o;
}

static int bench_print_json(const Cli *cli, const OaiTarget *t, const BenchOptions *o, const BenchLevel *levels,
                            size_t n) {
        _cleanup_(json_object_putp) json_object *root = json_object_new_object();
        json_object *a = json_object_new_array();

        if (!root || !a || json_object_object_add(root, "levels", a) < 0) {
                json_object_put(a);
                return log_oom();
        }
        json_object_object_add(root, "target", json_object_new_string(t->model));
        json_object_object_add(root, "route", json_object_new_string(t->vm ? "vm" : "model"));
        json_object_object_add(root, "isl", json_object_new_int64(o->isl));
        json_object_object_add(root, "osl", json_object_new_int64(o->osl));
        json_object_object_add(root, "requests", json_object_new_int64(o->requests));
        json_object_object_add(root, "cpu_watts", json_object_new_double(o->cpu_watts));
        for (size_t i = 0; i < n; i++) {
                json_object *l = bench_level_json(levels + i);

                if (!l || json_object_array_add(a, l) < 0) {
                        json_object_put(l);
                        return log_oom();
                }
        }
        return cli_print(cli, root, NULL);
}

/* A number as fmt says; "-" where there is nothing to measure (no
 * request succeeded). */
static int table_addf(CliTable *t, const char *fmt, double v) _printf_(2, 0);
static int table_addf(CliTable *t, const char *fmt, double v) {
        char buf[64];

        if (isnan(v))
                return cli_table_add(t, NULL);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        (void) snprintf(buf, sizeof(buf), fmt, v);
#pragma GCC diagnostic pop
        return cli_table_add(t, buf);
}

static int bench_print_table(const OaiTarget *t, const BenchOptions *o, const BenchLevel *levels, size_t n) {
        static const char *const header[] = {
                ">CONC", ">OK", ">FAILED", ">PROMPT TOK/S", ">GEN TOK/S", ">TTFT P50", ">TTFT P95",
                ">LAT P50", ">LAT P95", ">TOK/S ALL", ">WATTS", ">WH/QUERY", "POWER",
        };
        _cleanup_table_ CliTable *table = cli_table_new(ELEMENTSOF(header), header);
        _cleanup_free_ char *text = NULL;
        char watts[64], too_short[80];
        int r = 0;

        if (!table)
                return log_oom();
        (void) snprintf(watts, sizeof(watts), "estimated (CPU-s x %g W)", o->cpu_watts);
        (void) snprintf(too_short, sizeof(too_short), "too short to estimate (< %u CPU ticks)", POWER_MIN_TICKS);
        for (size_t i = 0; i < n && r >= 0; i++) {
                const BenchLevel *l = levels + i;
                double none = l->ok > 0 ? 0 : NAN;       /* NaN: the cell shows "-" */

                r = table_addf(table, "%.0f", l->concurrency);
                if (r >= 0) r = table_addf(table, "%.0f", l->ok);
                if (r >= 0) r = table_addf(table, "%.0f", l->failed);
                if (r >= 0) r = table_addf(table, "%.1f", l->prompt_tps + none);
                if (r >= 0) r = table_addf(table, "%.1f", l->gen_tps + none);
                if (r >= 0) r = table_addf(table, "%.3fs", l->ttft_p50 + none);
                if (r >= 0) r = table_addf(table, "%.3fs", l->ttft_p95 + none);
                if (r >= 0) r = table_addf(table, "%.3fs", l->e2e_p50 + none);
                if (r >= 0) r = table_addf(table, "%.3fs", l->e2e_p95 + none);
                if (r >= 0) r = table_addf(table, "%.1f", l->total_tps + none);
                if (r >= 0) r = table_addf(table, "%.1f", l->watts);
                if (r >= 0) r = table_addf(table, "%.3g", l->wh_per_query + none);
                if (r >= 0) r = cli_table_add(table, l->source == POWER_MEASURED ? "measured (RAPL)" :
                                                     l->source == POWER_ESTIMATED ? watts : too_short);
        }
        if (r < 0)
                return log_oom();
        r = cli_table_format(table, &text);
        if (r < 0)
                return log_oom();
        printf("%s %s: %u requests per level, %u prompt + %u generated tokens each\n%s",
               t->vm ? "VM" : "model", t->model, o->requests, o->isl, o->osl, text);
        for (size_t i = 0; i < n; i++)
                if (levels[i].first_error) {
                        _cleanup_free_ char *e = cli_sanitize_dup(levels[i].first_error);

                        printf("concurrency %u: %u failed, first: %s\n", levels[i].concurrency, levels[i].failed,
                               strnull(e));
                }
        return 0;
}

int cli_bench(const Cli *cli, const OaiTarget *target, const BenchOptions *o, const volatile sig_atomic_t *stop) {
        BenchLevel levels[BENCH_LEVELS_MAX] = {};
        unsigned failed = 0;
        size_t n = 0;
        int r = 0, q;

        for (; n < o->n_levels; n++) {
                log_info("concurrency %u: %u requests", o->concurrency[n], o->requests);
                r = bench_level(cli, target, o, (unsigned) n, levels + n, stop);
                if (r < 0)
                        break;
                failed += levels[n].failed;
        }
        q = cli->json ? bench_print_json(cli, target, o, levels, n) : bench_print_table(target, o, levels, n);
        for (size_t i = 0; i < n; i++)
                bench_level_done(levels + i);
        if (r < 0)
                return r;
        if (q < 0)
                return q;
        if (failed > 0)
                return log_error_errno(SYNTHETIC_ERRNO(EIO), "%u of %zu requests failed", failed,
                                       (size_t) o->requests * n);
        return 0;
}
