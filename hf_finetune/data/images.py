"""Images as model inputs: read and check them before training, then transform them on the fly.

Three sources reach the same `Image` column: an image folder (`datasets`' `imagefolder`
builder, one sub-folder per class), a CSV/JSONL of image paths (relative paths are resolved
against the file's folder), and a local or Hub dataset with an `Image` feature. Every image is
decoded once before the model loads, so an unreadable file costs seconds, not a crash at step
900; with `skip_bad_images` such files are dropped and listed instead.

Transforms run per batch through `Dataset.with_transform`. Single-label and multi-label image
classification stage training images (`StagedImages`: decoded, RGB, at the input size, uint8) and augment
the collated batch (`data.batch_augment`); evaluation gets the checkpoint's image processor (deterministic
resize + normalise). `ImageTransform` with `augment` keeps per-call augmentation for the multi-task
image inputs. Grayscale and RGBA images become RGB everywhere.
"""

from __future__ import annotations

import io
import logging
from pathlib import Path

from hf_finetune.errors import UserError, first_line

logger = logging.getLogger(__name__)

# Where each example came from (file path, or `split[row]` for embedded images): the
# misclassified-examples file names it. Only in the raw splits, never a model input.
IMAGE_REF_COLUMN = "image_ref"
SKIPPED_IMAGES_FILE = "skipped_images.txt"
SHOWN_IN_ERRORS = 5


class ImageChecker:
    """`check_inputs` hook for `data.load_labelled_data`: paths -> `Image`, every image decoded once."""

    def __init__(self, image_column: str, base_dirs: dict[str, Path], skip_bad: bool, source: str, trusted=False):
        self.image_column = image_column
        # Packaged data sets are encoded by `local_assets` from arrays: decoding them all again would
        # cost ~10 s per run (35,000 Fashion-MNIST images) and can find nothing.
        self.trusted = trusted
        self.base_dirs = base_dirs  # split -> folder its relative image paths start from
        self.skip_bad = skip_bad
        self.source = source
        self.skipped: list[str] = []  # "ref<TAB>reason" lines, for `skipped_images.txt`

    def __call__(self, split: str, dataset):
        from datasets import Image, Value

        column = self.image_column
        feature = dataset.features[column]
        if isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
            dataset = self._paths_to_images(split, dataset)
        elif not isinstance(feature, Image):
            raise UserError(
                f"column '{column}' of the {split} split holds {feature!r}, not images or image paths; "
                "set --image_column to the column with the images"
            )
        # Arrow cells ({bytes, path}) without decoding; `with_format("arrow")` honours earlier selects.
        cells = dataset.cast_column(column, Image(decode=False)).with_format("arrow")[column].to_pylist()
        refs, bad = [], []
        for row, cell in enumerate(cells):
            ref = (cell or {}).get("path") or f"{split}[{row}]"
            refs.append(ref)
            reason = None if self.trusted else _unreadable_reason(cell)
            if reason:
                bad.append((row, ref, reason))
        dataset = dataset.add_column(IMAGE_REF_COLUMN, refs)
        if not bad:
            return dataset
        names = ", ".join(f"{ref} ({reason})" for _, ref, reason in bad[:SHOWN_IN_ERRORS])
        more = f" and {len(bad) - SHOWN_IN_ERRORS} more" if len(bad) > SHOWN_IN_ERRORS else ""
        if not self.skip_bad:
            raise UserError(
                f"{len(bad)} unreadable image(s) in the {split} split of {self.source}: {names}{more}. "
                "Fix or remove them, or pass --skip_bad_images true to skip them"
            )
        logger.warning("skipping %d unreadable image(s) in the %s split: %s%s", len(bad), split, names, more)
        self.skipped += [f"{split}\t{ref}\t{reason}" for _, ref, reason in bad]
        bad_rows = {row for row, *_ in bad}
        keep = [i for i in range(len(dataset)) if i not in bad_rows]
        if not keep:
            raise UserError(f"every image of the {split} split of {self.source} is unreadable")
        return dataset.select(keep)

    def _paths_to_images(self, split: str, dataset):
        """Path strings -> an `Image` column; relative paths are relative to the data file, not the cwd."""
        from datasets import Image

        base = self.base_dirs.get(split, Path.cwd())

        def resolve(batch):
            return {
                self.image_column: [
                    str(base / p) if p and not Path(p).expanduser().is_absolute() else (p or None)
                    for p in batch[self.image_column]
                ]
            }

        dataset = dataset.map(resolve, batched=True, desc=f"Resolving image paths ({split})")
        return dataset.cast_column(self.image_column, Image())

    def extra_outputs(self) -> dict[str, str]:
        if not self.skipped:
            return {}
        return {SKIPPED_IMAGES_FILE: "split\timage\treason\n" + "\n".join(self.skipped) + "\n"}


def relative_path_bases(args) -> dict[str, Path]:
    """Split -> folder that relative image paths in it start from: its data file's folder, or the dataset folder."""
    files = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}
    if args.train_file:
        return {split: Path(f).expanduser().resolve().parent for split, f in files.items() if f}
    folder = Path(args.dataset_name or ".").expanduser()
    base = folder.resolve() if folder.is_dir() else Path.cwd()
    return dict.fromkeys(files, base)


def _unreadable_reason(cell) -> str | None:
    """None when the image decodes completely, else a short reason (missing, not an image, truncated)."""
    from PIL import Image as PILImage

    if not cell or not (cell.get("bytes") or cell.get("path")):
        return "no image"
    if not cell.get("bytes") and Path(cell["path"]).is_file() and Path(cell["path"]).stat().st_size == 0:
        return "empty file, 0 bytes"  # PIL would only say it "cannot identify" it
    try:
        source = io.BytesIO(cell["bytes"]) if cell.get("bytes") else cell["path"]
        with PILImage.open(source) as image:
            image.load()  # `verify()` misses truncated pixel data; decoding all of it does not
    except FileNotFoundError:
        return "file not found"
    except PILImage.UnidentifiedImageError:  # its message repeats the path
        return "not an image file"
    except Exception as exc:  # PIL raises several types (UnidentifiedImageError, OSError, SyntaxError)
        return first_line(exc)
    return None


def to_rgb(image):
    """Grayscale, palette, CMYK and RGBA -> RGB (alpha composited on white, as viewers show it)."""
    from PIL import Image as PILImage

    if image.mode == "RGB":
        return image
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = PILImage.new("RGBA", rgba.size, (255, 255, 255, 255))
        return PILImage.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def processor_geometry(processor) -> tuple[tuple[int, int], list[float], list[float], float]:
    """(output height and width, mean, std, rescale factor) the checkpoint's image processor applies."""
    size = dict(processor.crop_size or {}) if getattr(processor, "do_center_crop", False) else {}
    size = size or {k: v for k, v in dict(processor.size).items() if v is not None}
    if "height" in size and "width" in size:
        height, width = size["height"], size["width"]
    elif "shortest_edge" in size:
        height = width = size["shortest_edge"]
    else:
        raise UserError(f"cannot tell the input size from the image processor's size {size}")
    mean = list(processor.image_mean) if processor.do_normalize else [0.0, 0.0, 0.0]
    std = list(processor.image_std) if processor.do_normalize else [1.0, 1.0, 1.0]
    rescale = processor.rescale_factor if processor.do_rescale else 1.0
    return (int(height), int(width)), mean, std, float(rescale)


def build_augmentation(processor, policy: str, min_scale: float, random_erasing: float = 0.0):
    """The kornia training pipeline: random resized crop (+ flip) (+ TrivialAugment/RandAugment), normalise,
    (+ random erasing, after normalising as timm does: erased pixels take the value 0, the mean colour)."""
    import torch
    from kornia import augmentation as K
    from kornia.augmentation import auto

    size, mean, std, _ = processor_geometry(processor)
    steps = [] if policy == "none" else [K.RandomResizedCrop(size, scale=(min_scale, 1.0))]
    if policy not in ("crop", "none"):
        steps.append(K.RandomHorizontalFlip())
    if policy == "trivial":
        steps.append(auto.TrivialAugment())
    elif policy == "rand":
        steps.append(auto.RandAugment(n=2, m=9))  # the RandAugment paper's ImageNet setting
    steps.append(K.Normalize(mean=torch.tensor(mean), std=torch.tensor(std)))
    if random_erasing:
        steps.append(K.RandomErasing(p=random_erasing, value=0.0))  # 2-33% of the area, torchvision's default
    # A plain Sequential: images are the only input, and AugmentationSequential's bookkeeping (transform
    # matrices for boxes and masks) cost more than the crop itself on 28 px batches here.
    return torch.nn.Sequential(*steps)


def stage_images(images: list, processor):
    """uint8 (N, 3, H, W) at the model's input size: the processor's geometry (resize, centre crop) without its
    rescale and normalise, which the batch pipeline applies (`data.batch_augment`). Images already at the
    input size of a plain-resize processor skip the processor (PIL returns such a resize unchanged)."""
    import numpy as np
    import torch

    rgb = [to_rgb(image) for image in images]
    (height, width), *_ = processor_geometry(processor)
    plain_resize = not getattr(processor, "do_center_crop", False) and "height" in dict(processor.size)
    if plain_resize and all(image.size == (width, height) for image in rgb):
        return torch.from_numpy(np.stack([np.asarray(image) for image in rgb])).permute(0, 3, 1, 2).contiguous()
    pixels = processor(images=rgb, do_rescale=False, do_normalize=False, return_tensors="pt")["pixel_values"]
    return pixels.round().clamp(0, 255).to(torch.uint8)


def label_tensor(labels, num_labels: int, multi_label: bool):
    """Class ids (long), or multi-hot rows (float, for BCE) when several labels per example."""
    import torch

    if not multi_label:
        return torch.tensor(labels, dtype=torch.long)
    multi_hot = torch.zeros(len(labels), num_labels)
    for row, ids in enumerate(labels):
        multi_hot[row, list(ids)] = 1.0
    return multi_hot


# Decoded pixels kept in memory per split (`encode_once`): 30,000 Fashion-MNIST images at 28 px are 70 MB as
# uint8; 10,000 photos at 224 px are 1.5 GB, and larger splits are decoded batch by batch instead.
DECODED_BUDGET_BYTES = 1 << 30


def encode_once(dataset, transform, pixel_shape: tuple, pixel_dtype: str, label_feature, desc: str):
    """The split with `transform` applied once, before training (decoded images read from memory every epoch),
    when its pixels fit `DECODED_BUDGET_BYTES`; else the same transform applied batch by batch as rows are read."""
    import numpy as np
    from datasets import Array3D, Features

    if len(dataset) * int(np.prod(pixel_shape)) * np.dtype(pixel_dtype).itemsize > DECODED_BUDGET_BYTES:
        return dataset.with_transform(transform)
    features = Features({"pixel_values": Array3D(shape=pixel_shape, dtype=pixel_dtype), "labels": label_feature})

    def as_arrays(batch):
        return {name: value.numpy() for name, value in transform(batch).items()}

    encoded = dataset.map(as_arrays, batched=True, batch_size=256, remove_columns=dataset.column_names,
                          features=features, desc=desc, keep_in_memory=True)  # fmt: skip
    return encoded.with_format("torch")


class StagedImages:
    """`with_transform` callable for training: raw rows -> uint8 `pixel_values` at the input size and `labels`.
    Deterministic; the random part runs on the collated batch (`data.batch_augment.BatchAugmentation`)."""

    def __init__(self, processor, image_column: str, label_column: str, num_labels: int, multi_label: bool):
        self.processor = processor
        self.image_column, self.label_column = image_column, label_column
        self.num_labels, self.multi_label = num_labels, multi_label

    def __call__(self, batch: dict) -> dict:
        return {
            "pixel_values": stage_images(batch[self.image_column], self.processor),
            "labels": label_tensor(batch[self.label_column], self.num_labels, self.multi_label),
        }


class ImageTransform:
    """`with_transform` callable: a batch of raw rows -> `pixel_values` and `labels` tensors.

    `augment=None` is the evaluation transform: the image processor alone, deterministic.
    """

    def __init__(self, processor, image_column: str, label_column: str, num_labels: int, multi_label: bool,
                 augment: str = "none", min_scale: float = 0.5):  # fmt: skip
        self.processor = processor
        self.image_column, self.label_column = image_column, label_column
        self.num_labels, self.multi_label = num_labels, multi_label
        self.augmentation = None if augment == "none" else build_augmentation(processor, augment, min_scale)
        self.rescale = processor_geometry(processor)[3]

    def __call__(self, batch: dict) -> dict:
        images = [to_rgb(image) for image in batch[self.image_column]]
        if self.augmentation is None:
            pixel_values = self.processor(images=images, return_tensors="pt")["pixel_values"]
        else:
            pixel_values = self._augment(images)
        return {"pixel_values": pixel_values, "labels": self._labels(batch[self.label_column])}

    def _augment(self, images):
        import numpy as np
        import torch

        tensors = [
            torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() * self.rescale for image in images
        ]
        with torch.no_grad():
            if len({t.shape for t in tensors}) == 1:  # same size (Fashion-MNIST, CIFAR): one batched call
                return self.augmentation(torch.stack(tensors))
            return torch.cat([self.augmentation(t.unsqueeze(0)) for t in tensors])

    def _labels(self, labels):
        return label_tensor(labels, self.num_labels, self.multi_label)


def collate_images(examples: list[dict]) -> dict:
    import torch

    return {
        "pixel_values": torch.stack([e["pixel_values"] for e in examples]),
        "labels": torch.stack([e["labels"] for e in examples]),
    }
