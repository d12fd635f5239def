"""``python -m ganforge`` (also what ``torchrun -m ganforge`` runs)."""
from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
