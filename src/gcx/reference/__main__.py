"""``python -m gcx.reference serve NAME --port N``: run one reference backend."""

from __future__ import annotations

import argparse

from gcx.reference._data import REFERENCE_SERVICES
from gcx.reference.app import serve


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m gcx.reference")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("serve", help="serve one reference service")
    run.add_argument("name", choices=REFERENCE_SERVICES)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    serve(args.name, args.host, args.port)


if __name__ == "__main__":
    main()
