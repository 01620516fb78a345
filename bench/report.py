"""The Markdown table `make bench` prints and writes to `bench/results.md`."""

from __future__ import annotations


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def markdown_table(results: dict) -> str:
    sizes, rows = results["sizes"], results["configs"]
    text_rows = [r for r in rows.values() if "real_tokens" in r]
    vision_rows = [r for r in rows.values() if "real_tokens" not in r]
    lines = []
    if text_rows:
        lines += [
            f"Text: all-MiniLM-L6-v2, 4-topic fortunes, {sizes['train']} training samples x {sizes['epochs']} "
            "epoch(s), batch 32, max length 128",
            "",
            "| configuration | samples/s | real tokens/s | padded tokens/s | padding | peak RSS (MiB) | test accuracy "
            "| train time (s) | wall (s) | MFU |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in text_rows:
            lines.append(
                f"| {r['description']} | {r['samples_per_s']:.1f} | {r['real_tokens_per_s']:.0f} | "
                f"{r['padded_tokens_per_s']:.0f} | {r['padding_share']:.0%} | {r['peak_rss_mb']:.0f} | "
                f"{r['test_accuracy']:.3f} | {r['train_runtime']:.1f} | {r['wall_s']:.1f} | {_fmt(r['mfu'], '.1%')} |"
            )
        lora = rows.get("ours_lora", {})
        if "checkpoint_share_of_full" in lora:
            lines += [
                "",
                f"LoRA adapters-only checkpoint: {lora['checkpoint_mb']:.2f} MiB, "
                f"{lora['checkpoint_share_of_full']:.2%} of the full model's weights file.",
            ]
    if vision_rows:
        lines += [
            "",
            f"Vision: small ViT (random init), Fashion-MNIST target classes, {sizes['vision_train']} images x "
            f"{sizes['vision_epochs']} epoch(s), batch 32",
            "",
            "| configuration | images/s | peak RSS (MiB) | test accuracy | train time (s) | wall (s) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for r in vision_rows:
            lines.append(
                f"| {r['description']} | {r['samples_per_s']:.1f} | {r['peak_rss_mb']:.0f} | "
                f"{r['test_accuracy']:.3f} | {r['train_runtime']:.1f} | {r['wall_s']:.1f} |"
            )
    if results["ratios"]:
        lines += ["", "Samples/s ratios: " + ", ".join(f"{k} {v:.2f}x" for k, v in results["ratios"].items())]
    note = " (quick smoke sizes: not a measurement)" if results["quick"] else ""
    lines += ["", f"{results['machine']['cpu_cores']} CPU cores, torch {results['machine']['torch']}{note}."]
    return "\n".join(lines) + "\n"
