/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * zvm bench: fixed-length completions (the prompt is isl token ids, the
 * answer osl tokens with end-of-sequence ignored) streamed from an
 * OpenAI-compatible target at each concurrency, measured per request (time
 * to first token, end to end; prompt and generated tok/s from llama-server's
 * "timings", else from the stream's clock) and per level (percentiles,
 * throughput, energy per query as seed 004 computes it). Failed requests
 * are counted and their first error shown.
 */

#include "cli-openai.h"

#define BENCH_LEVELS_MAX 16
#define BENCH_PROMPT_TOKENS_MAX (16U * 1024U * 1024U)

typedef struct BenchOptions {
        unsigned isl, osl, requests;
        unsigned concurrency[BENCH_LEVELS_MAX];
        size_t n_levels;
        double cpu_watts;       /* per busy CPU, for the estimate without RAPL */
} BenchOptions;

/* Runs the levels one after another and prints the table (or --json).
 * Returns 0 if every request succeeded, -EIO (said) if some failed,
 * -ECANCELED on a stop signal (the levels done so far are printed). */
int cli_bench(const Cli *cli, const OaiTarget *target, const BenchOptions *o, const volatile sig_atomic_t *stop);
