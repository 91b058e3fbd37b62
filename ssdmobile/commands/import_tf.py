from ._args import existing_file, output_dir

NAME = "import-tf"
HELP = (
    "import a TF Object Detection API SSDLite-MobileNetV2 frozen graph (no TensorFlow needed): "
    "writes a checkpoint plus metadata that create_model loads"
)


def add_arguments(p):
    p.add_argument("graph", type=existing_file, help="frozen_inference_graph.pb")
    p.add_argument("--out", required=True, type=output_dir, help="output directory")
    p.add_argument(
        "--class-names",
        nargs="+",
        help="all class names, background first (default: background person)",
    )


def run(args):
    from ..models.tf_import import import_tf_graph

    pth = import_tf_graph(args.graph, args.out, args.class_names)
    print(f"wrote {pth} and {pth.with_suffix('.json')}")
    print(f"use it: ssdmobile eval --model ssdlite_mobilenet_v2_person --weights {pth} --data DIR")
