"""`ssdmobile train --recipe FILE [key=value ...]`: quantization-aware training from a YAML recipe."""

NAME = "train"
HELP = "quantization-aware training (PT2E QAT, XNNPACK int8) from a YAML recipe; torchrun-ready"


def add_arguments(p):
    p.add_argument("--recipe", required=True, help="YAML recipe (see recipes/)")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="override recipe keys, e.g. steps=2 lr=1e-5")


def run(args):
    from ..quant.qat import load_recipe, train

    recipe = load_recipe(args.recipe, args.overrides)
    result = train(recipe)
    if result.get("artifact"):
        print(f"artifact: {result['artifact']}")
