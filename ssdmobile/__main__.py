import sys

try:
    from .cli import main
except KeyboardInterrupt:  # Ctrl-C before the command line's own handling is in place
    print("ssdmobile: interrupted", file=sys.stderr)
    sys.exit(130)
sys.exit(main())
