"""`hf-finetune compare`: transfer methods side by side on the same splits (`runs.py`), and the transfer report
written from those runs (`report.py`).
"""
