"""Limits of the systems a stack's values end up in (kernel, Kubernetes)."""

from __future__ import annotations

# Linux refuses a single argv string longer than MAX_ARG_STRLEN = 32 pages = 128 KiB
# with E2BIG (include/uapi/linux/binfmts.h). The engine starts as `bash -c <script>`,
# so its whole script, extra arguments included, is one such string.
KERNEL_MAX_ARG_STRLEN = 32 * 4096

# etcd refuses a request larger than 1.5 MiB by default ("Request size limit",
# https://etcd.io/docs/v3.5/dev-guide/limit/; etcd flag --max-request-bytes), so no
# Kubernetes object, the Deployment or RayService holding the script included, may be larger.
KUBERNETES_MAX_OBJECT_BYTES = 1536 * 1024

# serving.extraArgs: a generous budget for hand-written flags, well inside the kernel's
# limit so the rest of the engine script (flags the config derives, the platform's
# prelude) still fits in one argument. *computed*: a quarter of MAX_ARG_STRLEN.
EXTRA_ARGS_MAX_BYTES = KERNEL_MAX_ARG_STRLEN // 4
EXTRA_ARGS_MAX_COUNT = 256
