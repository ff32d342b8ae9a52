"""The package's layers read top-down and nothing imports upward:
numbers, linalg -> core -> operators -> graph, inputsets -> algorithms -> io, audit, vnncomp
-> api, tables, commands, cli. Imports of the package's own modules sit at the top of modules."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "exactbounds"
LAYERS = [
    {"errors", "budget", "blas"},
    {"numbers", "linalg"},
    {"core", "tables"},
    {"operators"},
    {"graph", "inputsets"},
    {"algorithms"},
    {"io", "audit", "vnncomp"},
    {"api", "commands", "cli", "__main__", "__init__", "examples", "testing", "torch"},
]
RANK = {name: k for k, names in enumerate(LAYERS) for name in names}


def _unit(module):
    """The layer unit of ``exactbounds.a.b`` (its first component)."""
    return module.split(".")[1] if "." in module else "__init__"


def _modules():
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        parts = list(rel.parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        yield ".".join(parts), is_pkg, path


LAZY = {
    # worker processes import what an instance needs when it runs (start-up of the parent)
    "exactbounds.vnncomp.task": "worker",
    "exactbounds.vnncomp.runner": "worker",
    # the fast backend's module imports the backends' base class
    "exactbounds.linalg.backends": "cycle with linalg.fast",
}


def _type_only(node):
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(name, is_pkg, tree):
    """``(target module, lineno, at_top)`` of every import of the package's own modules
    (imports under ``if TYPE_CHECKING:`` are for annotations only and are left out)."""
    typing_only = {id(n) for b in tree.body if _type_only(b) for n in ast.walk(b)}
    top = {id(n) for n in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
        elif isinstance(node, ast.Import):
            mod = next((a.name for a in node.names if a.name.startswith("exactbounds")), "")
        else:
            continue
        if id(node) in typing_only:
            continue
        if mod == "exactbounds" or mod.startswith("exactbounds."):
            yield mod, node.lineno, id(node) in top


def test_layers_import_downward_only():
    bad = []
    for name, is_pkg, path in _modules():
        src = _unit(name)
        if src not in RANK:
            bad.append(f"{name}: module not placed in a layer")
            continue
        for mod, line, _ in _imports(name, is_pkg, ast.parse(path.read_text())):
            dst = _unit(mod)
            if dst in RANK and RANK[dst] > RANK[src]:
                bad.append(
                    f"{path.relative_to(PKG.parent)}:{line}: {src} imports {mod} "
                    f"(layer {RANK[dst]} above {RANK[src]})"
                )
    assert not bad, "\n".join(bad)


def test_own_imports_sit_at_the_top_of_modules():
    bad = []
    for name, is_pkg, path in _modules():
        if name in LAZY or name.startswith("exactbounds.commands."):
            continue  # a subcommand imports its machinery when it runs (fast CLI start-up)
        for mod, line, at_top in _imports(name, is_pkg, ast.parse(path.read_text())):
            if not at_top:
                bad.append(
                    f"{path.relative_to(PKG.parent)}:{line}: imports {mod} inside a function"
                )
    assert not bad, "\n".join(bad)


def test_cli_runs_openblas_on_one_thread_unless_told():
    """``exactbounds.blas``: the CLI sets OpenBLAS to one thread; an environment that names a
    thread count is left alone (checked in subprocesses through OpenBLAS's own getter)."""
    import os
    import subprocess
    import sys

    code = (
        "import ctypes\n"
        "from exactbounds.blas import loaded_openblas, single_thread_blas\n"
        "n = single_thread_blas()\n"
        "libs = loaded_openblas()\n"
        "get = None\n"
        "for p in libs:\n"
        "    lib = ctypes.CDLL(p)\n"
        "    for s in ('scipy_openblas_get_num_threads64_', 'scipy_openblas_get_num_threads',\n"
        "              'openblas_get_num_threads64_', 'openblas_get_num_threads'):\n"
        "        get = get or getattr(lib, s, None)\n"
        "print(n, get() if get else -1)\n"
    )
    env = {
        k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")
    }
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    n, threads = map(int, out.stdout.split())
    if threads == -1:  # no OpenBLAS here (another BLAS): nothing to set
        assert n == 0
        return
    assert n >= 1 and threads == 1
    env["OPENBLAS_NUM_THREADS"] = "2"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    n, threads = map(int, out.stdout.split())
    assert n == 0  # left alone (OpenBLAS may cap the count at the cores)
