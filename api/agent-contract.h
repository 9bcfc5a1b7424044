/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/*
 * The literals that zvmd and the guest side (zvm-agent, the initrd's init)
 * must agree on; api/agent-protocol.md says what they mean. Plain C, no
 * json-c, no includes: the static musl guest programs include it too.
 */

/* The agent listens on this vsock port (any CID). */
#define AGENT_PORT 1024U
/* The agent says READY to the host (CID 2) on this port. */
#define AGENT_READY_PORT 1025U

/* The longest request line the agent reads (without its '\n'); past it
 * the answer is E2BIG and the connection closes. */
#define AGENT_REQUEST_LINE_MAX (8U << 20)

/* The per-VM secret: zvmd passes it with -fw_cfg name=AGENT_SECRET_FW_CFG_NAME,
 * the guest kernel shows it at AGENT_SECRET_SYSFS_PATH. */
#define AGENT_SECRET_FW_CFG_NAME "opt/zvm/agent-secret"
#define AGENT_SECRET_SYSFS_PATH "/sys/firmware/qemu_fw_cfg/by_name/" AGENT_SECRET_FW_CFG_NAME "/raw"
/* Its length: 64 hex digits (256 bits). */
#define AGENT_SECRET_HEX_LEN 64

/* One line "stage=ms stage=ms ..." written by the initrd's init, passed on by
 * the agent as "initrd_timing" in READY and info. */
#define AGENT_INITRD_TIMING_DIR "/run/zvm"
#define AGENT_INITRD_TIMING_NAME "initrd-timing"
#define AGENT_INITRD_TIMING_FILE AGENT_INITRD_TIMING_DIR "/" AGENT_INITRD_TIMING_NAME

/* The agent bridges this vsock port to llama-server's unix socket while its
 * llm supervisor runs (op llm-start; the request may name another port). */
#define AGENT_LLM_PORT 8080U

/* Op pty: after its ok line both sides send frames, a type byte, a 16-bit
 * big-endian payload length and the payload (api/agent-protocol.md). One
 * frame fits one 16 KiB vsock write. */
#define PTY_FRAME_HEADER 3U
#define PTY_FRAME_MAX (16384U - PTY_FRAME_HEADER)
#define PTY_FRAME_INPUT 'i'             /* host → guest: bytes typed */
#define PTY_FRAME_WINSIZE 'w'           /* host → guest: rows, cols (2 x 16-bit big-endian) */
#define PTY_FRAME_OUTPUT 'o'            /* guest → host: the terminal's output */
#define PTY_FRAME_EXIT 'x'              /* guest → host, last: 'e' + exit code, or 's' + signal number */
