"""Fine-tune an image classifier (ViT, DeiT, BEiT, Swin, ConvNeXt, ... or the locally pretrained ViT).

    python tasks/image_classification.py --config fashion_mnist_target
    accelerate launch --config_file accelerate_configs/cpu.yaml tasks/image_classification.py --config beans
    ... --config fashion_mnist_target --dataset_name path/to/my_images --output_dir outputs/mine

Same as `hf-finetune train`, with the task fixed; the logic lives in `hf_finetune`.
"""

import sys

from hf_finetune.cli import task_entry_point

if __name__ == "__main__":
    sys.exit(task_entry_point("image_classification"))
