"""`hf-finetune`: a table of commands, one module per command family.
"""
