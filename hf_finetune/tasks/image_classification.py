"""Image classification, single-label or multi-label, for any `AutoModelForImageClassification` checkpoint.

ViT, DeiT, BEiT, Swin, ConvNeXt from the Hub and the locally pretrained ViT
(`hf-finetune pretrain`) go through the same code: the checkpoint's image processor
sets size, mean and std; a new head is sized to the labels.
"""

from __future__ import annotations

import logging

from datasets import Sequence, Value

from hf_finetune.assets.models import PRETRAINED_VIT_DIR
from hf_finetune.data.batch_augment import BatchAugmentation, BatchMix, describe_batch_augmentation
from hf_finetune.data.images import (
    IMAGE_REF_COLUMN,
    ImageChecker,
    ImageTransform,
    StagedImages,
    collate_images,
    encode_once,
    processor_geometry,
    relative_path_bases,
)
from hf_finetune.data.splits import load_labelled_data
from hf_finetune.errors import UserError, first_line
from hf_finetune.modeling.loading import (
    PROCESSOR_FILES,
    check_checkpoint_folder,
    check_remote_code,
    load_classifier,
    resolve_checkpoint,
)
from hf_finetune.settings.packaged import is_packaged
from hf_finetune.tasks import register_task
from hf_finetune.tasks.base import ClassificationTask

logger = logging.getLogger(__name__)
# Where transformers' AutoImageProcessor finds a checkpoint's image processor.


@register_task
class ImageClassification(ClassificationTask):
    name = "image_classification"
    summary = "one label (or several: multi_label) per image: objects, products, plant diseases"
    pipeline_tag = "image-classification"
    example_input = '"path/to/image.jpg"'
    auto_model_class = "AutoModelForImageClassification"
    processor_argument = "image_processor"
    supports_batch_augmentation = True

    def __init__(self, cfg):
        super().__init__(cfg)
        args = cfg.training
        # Images have no length to group by (the text default), and the transforms read the raw
        # `image` column, which Trainer would otherwise drop as "unused by the model".
        if args.train_sampling_strategy == "group_by_length":
            args.train_sampling_strategy = "random"
        args.remove_unused_columns = False
        if cfg.data.multi_label:  # every label's probability; the card says which threshold to apply
            self.example_input += ", top_k=None"

    def check_model_inputs(self):
        from pathlib import Path

        name = self.cfg.model.model_name_or_path
        if not Path(name).exists() and Path(name) == PRETRAINED_VIT_DIR:
            raise UserError(f"the offline pretrained ViT ({name}) is not there yet: run `hf-finetune pretrain` first")
        checkpoint = resolve_checkpoint(name)
        check_checkpoint_folder(checkpoint, self.cfg.model.allow_pickle)
        check_remote_code(checkpoint, self.cfg.model)
        folder = Path(checkpoint)
        if folder.is_dir() and not any((folder / f).is_file() for f in PROCESSOR_FILES):
            raise UserError(
                f"no image processor (preprocessor_config.json) in {checkpoint}: it sets the input size and "
                "normalisation; copy that file from the checkpoint this one was trained from"
            )

    def load_data(self):
        args = self.cfg.data
        source = args.train_file or args.dataset_name
        trusted = not args.train_file and is_packaged(args.dataset_name)
        checker = ImageChecker(args.image_column, relative_path_bases(args), args.skip_bad_images, source, trusted)
        data = load_labelled_data(
            args, seed=self.cfg.training.seed, inputs=[("image_column", args.image_column)], check_inputs=checker
        )
        data.extra_outputs.update(checker.extra_outputs())
        return data

    def load_processor(self):
        from transformers import AutoImageProcessor

        name = resolve_checkpoint(self.cfg.model.model_name_or_path)
        try:
            return AutoImageProcessor.from_pretrained(
                name, revision=self.cfg.model.revision, trust_remote_code=self.cfg.model.trust_remote_code
            )
        except Exception as exc:
            raise UserError(
                f"cannot load the image processor of '{name}' (preprocessor_config.json): {first_line(exc)}"
            ) from None

    def load_model(self, label_names):
        from transformers import AutoModelForImageClassification

        return load_classifier(
            AutoModelForImageClassification, self.cfg.model, label_names, **self.model_config_kwargs()
        )

    def encode(self, data, processor):
        args = self.cfg.data
        num_labels = len(data.label_names)
        train = StagedImages(processor, args.image_column, args.label_column, num_labels, args.multi_label)
        evaluation = ImageTransform(processor, args.image_column, args.label_column, num_labels, args.multi_label)
        logger.info(
            "training augmentation (on each batch): %s; evaluation: the image processor's resize + normalise",
            describe_batch_augmentation(args),
        )
        (height, width), *_ = processor_geometry(processor)
        labels = Sequence(Value("float32"), length=num_labels) if args.multi_label else Value("int64")
        return {
            split: encode_once(dataset, train, (3, height, width), "uint8", labels, f"Decoding {split} images")
            if split == "train"
            else encode_once(dataset, evaluation, (3, height, width), "float32", labels, f"Preparing {split} images")
            for split, dataset in data.splits.items()
        }

    def batch_transform(self, processor, data):
        args = self.cfg.data
        mix = None
        if args.mixup_alpha > 0 or args.cutmix_alpha > 0:
            mix = BatchMix(
                len(data.label_names), args.mixup_alpha, args.cutmix_alpha, args.mixup_prob, args.mixup_switch_prob
            )
        return BatchAugmentation(processor, args.augmentation, args.augmentation_min_scale, args.random_erasing, mix)

    def data_collator(self, processor):
        return collate_images

    def input_columns(self):
        return [("image", self.cfg.data.image_column)]

    def describe_example(self, example):
        return {"image": example[IMAGE_REF_COLUMN]}
