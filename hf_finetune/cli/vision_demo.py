"""`make demo-vision`: what pretraining buys on a target the model never saw, measured offline.

1. `hf-finetune pretrain` (reused when finished): a small ViT trained on the Fashion-MNIST
   source classes (0, 2, 4, 6, 8), train file only.
2. Fine-tune it on the held-out target classes (recipe `fashion_mnist_target`).
3. The same recipe with `strategy: scratch`: same architecture and image processor, random weights.
4. Print test accuracy of both, the gain, and the majority-class baseline.
"""

from __future__ import annotations

import sys
import time

from hf_finetune import train
from hf_finetune.cli import run_guarded
from hf_finetune.training.pretrain import pretrain
from hf_finetune.training.run import setup_logging

TARGET_RECIPE = "fashion_mnist_target"


def main(argv: list[str] | None = None) -> int:

    def demo() -> int:
        setup_logging(is_main=True)
        started = time.time()
        pretrained = pretrain()
        pretrain_s = time.time() - started
        runs = {}
        for name, overrides in (("pretrained", {}), ("scratch", {"strategy": "scratch"})):
            t0 = time.time()
            result = train(
                TARGET_RECIPE, output_dir=f"outputs/{TARGET_RECIPE}-{name}", overwrite_output_dir=True, **overrides
            )
            runs[name] = (result, time.time() - t0)
        test = {name: result.metrics["test"]["accuracy"] for name, (result, _) in runs.items()}
        print()
        print(f"Fashion-MNIST target classes, ViT pretrained on the source classes ({pretrained})")
        print(f"{'run':<12}{'test accuracy':>15}{'macro F1':>10}{'time (s)':>10}")
        for name, (result, seconds) in runs.items():
            scores = result.metrics["test"]
            print(f"{name:<12}{scores['accuracy']:>15.4f}{scores['macro_f1']:>10.4f}{seconds:>10.0f}")
        baseline = runs["pretrained"][0].majority_baseline
        print(f"gain from pretraining: {test['pretrained'] - test['scratch']:+.4f} test accuracy")
        print(f"majority-class baseline: {baseline:.4f}")
        print(f"total {time.time() - started:.0f} s (pretraining {pretrain_s:.0f} s, 0 when reused)")
        return 0

    return run_guarded(demo)


if __name__ == "__main__":
    sys.exit(main())
