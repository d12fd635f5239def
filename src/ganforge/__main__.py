"""``python -m ganforge`` (also what ``torchrun --nproc_per_node N -m ganforge train ...`` runs).

Under torchrun every process runs this; ``ganforge.train`` joins the process group (``train/distributed.py``) and
rank 0 writes the run. Ranks > 0 keep quiet on stdout so the summary is printed once; errors still go to stderr.
"""
import os

from .cli import run

if __name__ == "__main__":
    if os.environ.get("RANK", "0") not in ("", "0"):   # only under torchrun: its import loads torch
        from .train.distributed import silence_other_ranks
        silence_other_ranks()
    run()
