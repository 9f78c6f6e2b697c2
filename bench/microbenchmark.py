"""Run `raggio microbenchmark`'s rows against Ray or raggio.

Usage:
    python bench/microbenchmark.py --backend ray|raggio [--json OUT] [--quick]
                                   [--filter TEXT] [--row-timeout SECONDS]

The rows live in raggio/microbenchmark.py (what `raggio microbenchmark`
runs).  This script loads that file by path rather than importing the raggio
package, so that it runs unchanged in Ray's virtual environment.
"""

import importlib.util
import os
import sys

MODULE_PATH = os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "raggio", "microbenchmark.py")


def load_microbenchmark():
    spec = importlib.util.spec_from_file_location("microbenchmark", MODULE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    sys.exit(load_microbenchmark().main())
