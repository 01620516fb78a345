import sys

from hf_finetune.cli.app import main

sys.exit(main())
