"""Questions about transfer, answered from measurements: frozen features, classical heads, transferability,
the advisor, strategy comparisons and their report, zero-shot by attributes.
"""
