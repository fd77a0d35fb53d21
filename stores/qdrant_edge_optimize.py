"""Builds the HNSW graphs of a Qdrant Edge shard folder in a process of its own.

`EdgeShard.optimize()` holds the GIL from start to end (100k vectors stop every Python thread of the
calling process for a minute or more), so a serving process has a copy of its shard optimised here and
swaps it in (`QdrantEdgeVectorIndex.build_aside`). Usage: `python -m sieve.stores.qdrant_edge_optimize
FOLDER [NICENESS]`; the niceness (default 10) keeps the build off the cores queries need.
"""

from __future__ import annotations

import os
import sys

import qdrant_edge as qe


def main(argv: list[str]) -> int:
    if len(argv) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    os.nice(int(argv[1]) if len(argv) == 2 else 10)
    shard = qe.EdgeShard.load(argv[0])  # the stored config: the copy is of a shard the caller configured
    try:
        shard.optimize()
        shard.flush()
    finally:
        shard.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
