"""``exactbounds prove``: replay TorchLean's theorem statements symbolically against the
package's operators (the same runner as ``python -m proofs``). Exit 0 only when every
obligation has its expected status."""


def register(sub):
    from proofs.args import add_arguments

    from .common import add_command

    p = add_command(
        sub,
        "prove",
        "check the proof obligations (TorchLean theorems replayed "
        "symbolically against the operators)",
        ["exactbounds prove", "exactbounds prove -k batchnorm --json"],
        exit_codes="exit status: 0 every obligation has its expected status, 1 "
        "otherwise, 2 bad usage, 130 interrupted",
    )
    add_arguments(p)
    p.set_defaults(func=run)


def run(args):
    from proofs.runner import execute

    return execute(args)
