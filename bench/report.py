"""The Markdown table `make bench` prints and writes to `bench/results.md`."""

from __future__ import annotations


def _fmt(value, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def _share(value) -> str:
    """A share of a peak, with a second decimal below 1% (a bf16 run of a small model sits there)."""
    return "n/a" if value is None else format(value, ".1%" if value >= 0.01 else ".2%")


def _gflops(value) -> str:
    return "n/a" if value is None else f"{value / 1e9:.1f}"


def markdown_table(results: dict) -> str:
    lines = [caption(results["machine"])]
    lines += text_table(results)
    lines += vision_table(results)
    if results["ratios"]:
        lines += ["", "Samples/s ratios: " + ", ".join(f"{k} {v:.2f}x" for k, v in results["ratios"].items())]
    lines += target_lines(results.get("targets"))
    note = " (quick smoke sizes: not a measurement)" if results["quick"] else ""
    lines += ["", f"{results['machine']['cpu_cores']} CPU cores, torch {results['machine']['torch']}{note}."]
    return "\n".join(lines) + "\n"


def caption(machine: dict) -> str:
    """What the numbers were measured on; the peaks are what `CPU peak` divides by (CPU runs only)."""
    line = f"Ran on: {machine.get('cpu', 'unknown CPU')}; torch {machine['torch']}"
    if machine.get("cuda"):
        line += f"; GPU {machine['cuda']}"
    peaks = machine.get("peak_matmul_flops")
    if peaks:
        line += (
            f"; dense matmul peak (2048 x 2048, best of ~1 s): fp32 {_gflops(peaks['fp32'])} GFLOP/s, "
            f"bf16 {_gflops(peaks['bf16'])} GFLOP/s"
        )
    return line + ".\n"


def text_table(results: dict) -> list[str]:
    sizes, rows = results["sizes"], results["configs"]
    text_rows = [r for r in rows.values() if "real_tokens" in r]
    if not text_rows:
        return []
    lines = [
        f"Text: all-MiniLM-L6-v2, 4-topic fortunes, {sizes['train']} training samples x {sizes['epochs']} "
        "epoch(s), batch 32, max length 128" + (f", seed {sizes['seed']}" if sizes.get("seed") is not None else ""),
        "",
        "| configuration | precision | samples/s | real tokens/s | padded tokens/s | padding | peak RSS (MiB) "
        "| test accuracy | train time (s) | wall (s) | GFLOP/s | CPU peak | MFU |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in text_rows:
        lines.append(
            f"| {r['description']} | {r['precision']} | {r['samples_per_s']:.1f} | {r['real_tokens_per_s']:.0f} | "
            f"{r['padded_tokens_per_s']:.0f} | {r['padding_share']:.0%} | {r['peak_rss_mb']:.0f} | "
            f"{r['test_accuracy']:.3f} | {r['train_runtime']:.1f} | {r['wall_s']:.1f} | "
            f"{_gflops(r['achieved_flops'])} | {_share(r['peak_share'])} | {_fmt(r['mfu'], '.1%')} |"
        )
    lora = rows.get("ours_lora", {})
    if "checkpoint_share_of_full" in lora:
        lines += [
            "",
            f"LoRA adapters-only checkpoint: {lora['checkpoint_mb']:.2f} MiB, "
            f"{lora['checkpoint_share_of_full']:.2%} of the full model's weights file.",
        ]
    return lines


def vision_table(results: dict) -> list[str]:
    sizes = results["sizes"]
    vision_rows = [r for r in results["configs"].values() if "real_tokens" not in r]
    if not vision_rows:
        return []
    lines = [
        "",
        f"Vision: small ViT (random init), Fashion-MNIST target classes, {sizes['vision_train']} images x "
        f"{sizes['vision_epochs']} epoch(s), batch 32",
        "",
        "| configuration | precision | images/s | peak RSS (MiB) | test accuracy | train time (s) | wall (s) "
        "| GFLOP/s | CPU peak |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in vision_rows:
        lines.append(
            f"| {r['description']} | {r['precision']} | {r['samples_per_s']:.1f} | {r['peak_rss_mb']:.0f} | "
            f"{r['test_accuracy']:.3f} | {r['train_runtime']:.1f} | {r['wall_s']:.1f} | "
            f"{_gflops(r.get('achieved_flops'))} | {_share(r.get('peak_share'))} |"
        )
    return lines


def target_lines(targets: dict | None) -> list[str]:
    """Issue 27's samples/s targets for this CPU's kind, each with its measured ratio and whether it is met."""
    if not targets or not targets["checks"]:
        return []
    checks = [
        f"{name} {c['ratio']:.2f}x (target {c['target']:.1f}x: {'met' if c['met'] else 'NOT met'})"
        for name, c in targets["checks"].items()
    ]
    return ["", f"Targets on a CPU with {targets['cpu_kind']}: " + ", ".join(checks)]
