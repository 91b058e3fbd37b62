from ..models import list_models
from ..table import print_table

NAME = "models"
HELP = "list registered models: input size, parameters, weights source, reference AP"


def add_arguments(p):
    pass


def run(args):
    rows = []
    for e in list_models():
        params = sum(t.numel() for t in e.builder().core.parameters())
        rows.append([e.name, f"{e.input_size[0]}x{e.input_size[1]}", f"{params / 1e6:.2f}M",
                     e.weights.describe() if e.weights else "none (random init or --weights PATH)",
                     e.reference_ap or "-"])
    print_table(["model", "input", "params", "weights", "reference AP"], rows)
