"""Print the requirements of an installed distribution that a CPU-only check needs.

Run with the target virtualenv's interpreter after ``pip install --no-deps DIST``: it reads
the distribution's own metadata (so the versions are the ones the release pins), evaluates
the environment markers for this interpreter, and drops what only a GPU needs (CUDA torch,
kernels, NVIDIA libraries). setup.sh installs the rest, with CPU torch already in place.
Stdlib plus pip's vendored ``packaging`` only: it must run in a bare virtualenv.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import distribution

from pip._vendor.packaging.requirements import Requirement

# GPU-only or provided separately (torch comes from the machine's CPU wheel first).
SKIP = re.compile(
    r"^(torch|torchvision|torchaudio|xformers|triton|flashinfer.*|nvidia-.*|cuda-.*|cupy.*|nixl.*|"
    r"deep[-_]gemm|deep[-_]ep|quack-kernels|tilelang|apache-tvm-ffi|vllm)$",
    re.IGNORECASE,
)


def main() -> None:
    name, *extras = sys.argv[1:]
    for line in distribution(name).requires or []:
        req = Requirement(line)
        if SKIP.match(req.name):
            continue
        envs = [{"extra": e} for e in ["", *extras]]
        if req.marker is not None and not any(req.marker.evaluate(e) for e in envs):
            continue
        req.marker = None
        print(req)


if __name__ == "__main__":
    main()
