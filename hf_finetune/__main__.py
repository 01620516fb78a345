"""`python -m hf_finetune` (and `accelerate launch -m hf_finetune train ...`) is the `hf-finetune` command."""

import sys

from hf_finetune.cli.app import main

if __name__ == "__main__":
    sys.exit(main())
