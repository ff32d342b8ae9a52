"""The runner's command-line arguments, shared by ``python -m proofs`` and ``exactbounds
prove`` (a light module: importing it loads neither sympy nor the obligations)."""


def add_arguments(p):
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument(
        "-k",
        dest="pattern",
        default=None,
        help="only the obligations whose name contains this text",
    )
    p.add_argument("--list", action="store_true", help="list the obligations and exit")
