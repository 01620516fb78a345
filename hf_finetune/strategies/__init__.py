"""Transfer strategies, one file each: `ls` this folder for the menu.

A strategy is a small object with hooks (prepare the model, add callbacks), not a
Trainer subclass; several can be composed in one run (`strategy: [a, b]`).
"""

from hf_finetune.registry import Registry

STRATEGIES = Registry("strategy", __name__)
register_strategy = STRATEGIES.register
