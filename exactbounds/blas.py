"""The BLAS thread count of the command line.

The mode ``fast`` spends its time in matrix-vector products and thin matrix products, where a
multi-threaded OpenBLAS gains little and, on a machine whose cores are busy, loses much: on 2
cores with one of them busy, fast CROWN of sri_resnet_a took 25 s on two BLAS threads against
6.7 s on one. So the CLI runs OpenBLAS on one thread unless the user set
``OPENBLAS_NUM_THREADS`` or ``OMP_NUM_THREADS``. The library leaves BLAS alone.
"""

import ctypes
import os

SETTERS = (
    "scipy_openblas_set_num_threads64_",
    "scipy_openblas_set_num_threads",
    "openblas_set_num_threads64_",
    "openblas_set_num_threads",
)
"""The thread setters of OpenBLAS builds (numpy's wheels bundle ``scipy_openblas``)."""
ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def loaded_openblas() -> list[str]:
    """Paths of the OpenBLAS libraries loaded in this process (Linux ``/proc/self/maps``;
    none elsewhere)."""
    try:
        with open("/proc/self/maps") as f:
            return sorted({ln.split()[-1] for ln in f if "openblas" in ln and "/" in ln})
    except OSError:  # pragma: no cover - not Linux
        return []


def single_thread_blas() -> int:
    """Set every loaded OpenBLAS to one thread unless the environment names a thread count;
    returns how many libraries were set (0: none loaded, not OpenBLAS, or the user chose)."""
    if any(os.environ.get(k) for k in ENV):
        return 0
    import numpy  # noqa: F401  (loads numpy's BLAS)

    done = 0
    for path in loaded_openblas():
        try:
            lib = ctypes.CDLL(path)
        except OSError:  # pragma: no cover - unloadable
            continue
        for name in SETTERS:
            fn = getattr(lib, name, None)
            if fn is not None:
                fn(1)
                done += 1
                break
    return done
