"""``exactbounds prove``: replay TorchLean's theorem statements symbolically against the
package's operators (the same runner as ``python -m proofs``). Exit 0 only when every
obligation has its expected status."""


def register(sub):
    p = sub.add_parser("prove", help="check the proof obligations (TorchLean theorems replayed "
                                     "symbolically against the operators)")
    from proofs.args import add_arguments
    add_arguments(p)
    p.set_defaults(func=run)


def run(args):
    from proofs.runner import execute
    return execute(args)
