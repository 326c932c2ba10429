"""`python -m vaezoo ...` (also what `torchrun -m vaezoo train ...` runs)."""

from vaezoo.cli import main

main()
