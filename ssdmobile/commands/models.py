from ..table import print_table

NAME = "models"
HELP = "list registered models: input size, parameters, weights source, reference accuracy"


def add_arguments(p):
    pass


def run(args):
    from ..models import list_models

    rows = [
        [
            e.name,
            f"{e.input_size[0]}x{e.input_size[1]}",
            f"{e.num_params / 1e6:.2f}M",
            e.weights.describe() if e.weights else "none (random init or --weights PATH)",
            e.reference,
        ]
        for e in list_models()
    ]
    print_table(["model", "input", "params", "weights", "reference accuracy"], rows)
