"""Random augmentation of a collated training batch, on the device the model trains on (kornia).

The data loader only decodes images and brings them to the model's input size (`data.images.StagedImages`,
uint8: 4x less to move than floats, and nothing random in it, so worker processes and exact resume need no
seeding of their own); the Trainer hands each training batch here (`StrategyTrainer.batch_transform`):
rescale, the augmentation policy (random resized crop, flip, TrivialAugment/RandAugment), normalise, random
erasing, then mixup or CutMix. Every random draw comes from torch's global generator, which Trainer seeds and
saves in each checkpoint, so a run with augmentation is as reproducible, and as resumable, as one without.
Evaluation never comes here: its images go through the image processor, deterministically.
"""

from __future__ import annotations

import torch
from kornia import augmentation as K
from torch.nn import functional as F

from hf_finetune.data.images import build_augmentation, processor_geometry


class BatchMix:
    """Mixup or CutMix of each image with a random partner from the same batch, and the soft targets that go with it.

    Per batch, with probability `prob`: CutMix with probability `switch_prob` when both are on (timm's batch
    mode). Mixup draws one lambda ~ Beta(mixup_alpha, mixup_alpha) for the batch; CutMix draws a box per image
    (kornia, lambda ~ Beta(cutmix_alpha, cutmix_alpha)) and mixes the labels by the area actually pasted.
    Targets: share * one_hot(label) + (1 - share) * one_hot(partner's label), share = what is left of the image.
    """

    def __init__(self, num_labels: int, mixup_alpha: float, cutmix_alpha: float, prob: float, switch_prob: float):
        self.num_labels = num_labels
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self.prob, self.switch_prob = prob, switch_prob
        self.cutmix = K.RandomCutMixV2(
            beta=cutmix_alpha or 1.0, p=1.0, use_correct_lambda=True, data_keys=["input", "class"]
        )

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        one_hot = F.one_hot(labels, self.num_labels).to(images.dtype)
        if torch.rand(()) >= self.prob:
            return images, one_hot
        use_cutmix = self.cutmix_alpha > 0 and (self.mixup_alpha <= 0 or torch.rand(()) < self.switch_prob)
        if use_cutmix:
            mixed, info = self.cutmix(images, labels)
            info = info[0]  # (label, partner's label, share of the image kept) per image
            kept = info[:, 2]
        else:
            lam = torch.distributions.Beta(self.mixup_alpha, self.mixup_alpha).sample()
            mixup = K.RandomMixUpV2(lambda_val=torch.stack([lam, lam]), p=1.0, data_keys=["input", "class"])
            mixed, info = mixup(images, labels)  # image * (1 - lambda) + partner * lambda
            kept = 1.0 - info[:, 2]
        partner = F.one_hot(info[:, 1].long(), self.num_labels).to(images.dtype)
        kept = kept.to(images.dtype)[:, None]
        return mixed, kept * one_hot + (1.0 - kept) * partner


class BatchAugmentation:
    """`inputs -> inputs` for a training batch: uint8 staged pixels in, augmented and normalised floats out."""

    def __init__(
        self, processor, policy: str, min_scale: float, random_erasing: float = 0.0, mix: BatchMix | None = None
    ):
        self.pipeline = build_augmentation(processor, policy, min_scale, random_erasing)
        self.rescale = processor_geometry(processor)[3]
        self.mix = mix

    def __call__(self, inputs: dict) -> dict:
        with torch.no_grad():
            pixels = self.pipeline(inputs["pixel_values"].float() * self.rescale)
            labels = inputs["labels"]
            if self.mix is not None:
                pixels, labels = self.mix(pixels, labels)
        return {**inputs, "pixel_values": pixels, "labels": labels}


def describe_batch_augmentation(args) -> str:
    """One log line: the policy and the regularisers on top of it."""
    parts = [args.augmentation]
    if args.random_erasing:
        parts.append(f"random erasing p={args.random_erasing:g}")
    if args.mixup_alpha > 0 or args.cutmix_alpha > 0:
        both = args.mixup_alpha > 0 and args.cutmix_alpha > 0
        parts.append(
            f"mixup alpha {args.mixup_alpha:g} / cutmix alpha {args.cutmix_alpha:g}, p={args.mixup_prob:g}"
            + (f", cutmix share {args.mixup_switch_prob:g}" if both else "")
        )
    return "; ".join(parts)
