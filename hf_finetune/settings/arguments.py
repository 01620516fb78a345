"""Every setting a user can change, in one place.

Dataclasses are the schema; a flat YAML recipe fills them; `--key value` on the
command line wins over the recipe (the same precedence as trl's `TrlParser`).
Field names are unique across all dataclasses, so a recipe needs no sections, and
an unknown key is an error that names it rather than a silently ignored typo.
The resolved configuration is written beside the outputs as `run_config.yaml`,
which is itself a valid recipe: any run can be repeated from its output folder.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from transformers import TrainingArguments

from hf_finetune.errors import UserError
from hf_finetune.settings.conventions import check_report_to, split_report_to
from hf_finetune.settings.ignored import refuse_ignored_training_flags
from hf_finetune.settings.launch import check_launch_environment, run_on_cpu_without_accelerators
from hf_finetune.settings.packaged import is_packaged
from hf_finetune.settings.precision import PRECISIONS, resolve_training_precision

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
# Shipped as package data, so an installed wheel finds them: recipes grouped by data set
# (`recipes/<data set>/<name>.yaml`) and the accelerate launch configs (`launch_configs/<name>.yaml`).
RECIPES_DIR = PACKAGE_ROOT / "recipes"
LAUNCH_CONFIGS_DIR = PACKAGE_ROOT / "launch_configs"
DEFAULT_OUTPUT_ROOT = "outputs"
# TrainingArguments fields that hold secrets: never written to run_config.yaml.
SECRET_FIELDS = ("hub_token",)
AUGMENTATIONS = ("crop_flip", "crop", "trivial", "rand", "none")
TAG_SCHEMES = ("iob2", "iob1")


@dataclass
class RunArguments:
    """What kind of run this is and how it treats an existing output folder."""

    task: str = field(
        default="text_classification",
        metadata={"help": "Task to run (`hf-finetune tasks` lists them), e.g. `text_classification`."},
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata={
            "help": "Replace an output folder that already holds a finished run. Without it such a folder is "
            "refused, so a finished model is never overwritten by accident (transformers 5.x dropped this flag)."
        },
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata={"help": "Stop after this many evaluations without improvement of `metric_for_best_model`."},
    )
    cv_folds: int = field(
        default=0,
        metadata={
            "help": "k >= 2: k-fold cross-validation instead of one run. The train split is cut into k stratified "
            "folds (seeded); fold i trains a fresh model on the other folds, validates on fold i and is tested on the "
            "test split, in output_dir/fold-<i> with training seed `seed + i`. Mean and std go to "
            "output_dir/cv_metrics.json. Finished folds are skipped on a rerun. 0: off."
        },
    )
    resume: str = field(
        default="auto",
        metadata={
            "help": "`auto`: continue an unfinished run in output_dir from its newest complete checkpoint (so "
            "re-running the same command after a crash or preemption resumes it); `false`: start over; `hub`: "
            "continue from the newest checkpoint pushed to hub_model_id (hub_strategy checkpoint), e.g. on a "
            "new machine, or start when none was pushed yet; or a checkpoint-N folder to resume from."
        },
    )
    tune_space: dict | str | None = field(  # a mapping in YAML, a YAML/JSON string on the command line
        default=None,
        metadata={
            "help": "`hf-finetune tune` only (train ignores it): the search space, by recipe key. In YAML a mapping "
            "`key: [choices]`, `key: {low: L, high: H, log: true}`, `key: value` (fixed) or `key: null` (not "
            "searched); on the command line the same as a YAML/JSON string. It narrows the strategies' and the "
            "common spaces; `replace: true` inside it searches only what it lists. See docs/tuning.md."
        },
    )


@dataclass
class ModelArguments:
    """Which checkpoint to start from and how to load it."""

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Hub model id (`bert-base-uncased`), local checkpoint folder, or `packaged:NAME` for a "
            "checkpoint that ships in a Python package (`packaged:all-MiniLM-L6-v2`)."
        },
    )
    tokenizer_name: str | None = field(
        default=None, metadata={"help": "Tokenizer id or folder, when it differs from the checkpoint."}
    )
    revision: str | None = field(
        default=None,
        metadata={
            "aliases": ["--model_revision", "--model-revision"],
            "help": "Branch, tag or commit of a Hub checkpoint (pin it for reproducible runs).",
        },
    )
    trust_remote_code: bool = field(
        default=False,
        metadata={"help": "Run Python code shipped with a Hub checkpoint. Off by default: it executes foreign code."},
    )
    ignore_mismatched_sizes: bool = field(
        default=False,
        metadata={"help": "Replace a checkpoint's existing classification head when its size differs from the labels."},
    )
    allow_pickle: bool = field(
        default=False,
        metadata={
            "help": "Accept pickle weights (`pytorch_model.bin`) when no safetensors exist. Off by default: "
            "unpickling can run arbitrary code."
        },
    )
    drop_path_rate: float | None = field(
        default=None,
        metadata={
            "help": "Stochastic depth (https://arxiv.org/abs/1603.09382): the largest share of residual branches "
            "dropped per layer, set in the model config (Swin, ConvNeXt, BEiT, DINOv2; timm models). Refused for "
            "configs without it (ViT, BERT). Default: the checkpoint's value."
        },
    )
    hidden_dropout: float | None = field(
        default=None,
        metadata={
            "help": "Dropout of hidden states (`hidden_dropout_prob`/`hidden_dropout`/`dropout` in the config). "
            "Default: the checkpoint's value."
        },
    )
    attention_dropout: float | None = field(
        default=None,
        metadata={
            "help": "Dropout of attention weights (`attention_probs_dropout_prob`/`attention_dropout`). "
            "Default: the checkpoint's value."
        },
    )
    cache_dir: str | None = field(
        default=None,
        metadata={
            "help": "Where downloaded checkpoints (`<dir>/hub`) and data sets (`<dir>/datasets`) are cached. "
            "Default: the Hugging Face caches (HF_HOME)."
        },
    )
    license: str | None = field(
        default=None,
        metadata={
            "help": "Licence in the model card (a Hub licence id: `apache-2.0`, `mit`, ...). Default: the base "
            "checkpoint's when hf_finetune knows it (the packaged checkpoints), else none is claimed."
        },
    )
    language: str | None = field(
        default=None,
        metadata={"help": "Language(s) of the data for the model card (ISO 639-1, e.g. `en`); default: when known."},
    )


@dataclass
class DataArguments:
    """Where the labelled data comes from and which columns hold what."""

    dataset_name: str | None = field(
        default=None,
        metadata={
            "help": "Hub dataset id (`nyu-mll/glue`), local dataset folder (data files or `save_to_disk`), or "
            "`packaged:NAME` for a data set that ships in a package (`packaged:fortunes-topics`)."
        },
    )
    dataset_config_name: str | None = field(
        default=None, metadata={"help": "Configuration of a Hub dataset, e.g. `sst2` for `nyu-mll/glue`."}
    )
    train_file: str | None = field(
        default=None,
        metadata={"help": "Local training file: .csv, .tsv, .json, .jsonl or .parquet. Wins over dataset_name."},
    )
    validation_file: str | None = field(default=None, metadata={"help": "Local validation file (same formats)."})
    test_file: str | None = field(default=None, metadata={"help": "Local held-out test file (same formats)."})
    text_column: str = field(
        default="text",
        metadata={"aliases": ["--text_column_name", "--text-column-name"], "help": "Column holding the input text."},
    )
    text_pair_column: str | None = field(
        default=None, metadata={"help": "Second text column for sentence-pair inputs (NLI, paraphrase)."}
    )
    label_column: str = field(
        default="label",
        metadata={"aliases": ["--label_column_name", "--label-column-name"], "help": "Column holding the label."},
    )
    train_split: str = field(default="train", metadata={"help": "Split used for training."})
    validation_split: str | None = field(
        default=None,
        metadata={"help": "Validation split name. Default: the first of validation/valid/dev/val that exists."},
    )
    test_split: str | None = field(
        default=None,
        metadata={"help": "Held-out test split name, evaluated once at the end. Default: `test` if it exists."},
    )
    validation_size: float = field(
        default=0.1,
        metadata={"help": "Share of `train` held out, stratified and seeded, when there is no validation split."},
    )
    max_train_samples: int | None = field(
        default=None, metadata={"help": "Use a seeded random subset of this many training examples."}
    )
    max_eval_samples: int | None = field(
        default=None, metadata={"help": "Use a seeded random subset of this many validation (and test) examples."}
    )
    max_predict_samples: int | None = field(
        default=None,
        metadata={"help": "Use a seeded random subset of this many test examples. Default: max_eval_samples."},
    )
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for tokenizing / encoding the data (`datasets.map` num_proc)."}
    )
    max_seq_length: int = field(default=128, metadata={"help": "Longer inputs are truncated to this many tokens."})
    image_column: str = field(
        default="image",
        metadata={
            "aliases": ["--image_column_name", "--image-column-name"],
            "help": "Column holding the images: an `Image` feature, or image file paths (relative paths are "
            "resolved against the data file's folder). Image folders give `image` and `label`.",
        },
    )
    skip_bad_images: bool = field(
        default=False,
        metadata={
            "help": "Skip unreadable images (logged, listed in `skipped_images.txt` in the output folder). "
            "Off by default: unreadable images are an error naming them, found before training starts."
        },
    )
    augmentation: str = field(
        default="crop_flip",
        metadata={
            "help": "Training augmentation (kornia): crop_flip (random resized crop + horizontal flip), crop "
            "(no flip: digits, text), trivial (crop_flip + TrivialAugment), rand (crop_flip + RandAugment), "
            "none. Evaluation is always a deterministic resize + normalise."
        },
    )
    augmentation_min_scale: float = field(
        default=0.5,
        metadata={
            "help": "Smallest share of the image area a random resized crop keeps. torchvision's 0.08 suits "
            "224 px photos; at 28-32 px it leaves too little of the object."
        },
    )
    random_erasing: float = field(
        default=0.0,
        metadata={
            "help": "Training images: probability of erasing a random rectangle (2-33%% of the area) after "
            "normalisation (https://arxiv.org/abs/1708.04896; timm's `--reprob`, 0.25 in its recipes). 0: off."
        },
    )
    mixup_alpha: float = field(
        default=0.0,
        metadata={
            "help": "Mixup (https://arxiv.org/abs/1710.09412): blend two training images and their labels with a "
            "weight drawn from Beta(alpha, alpha) per batch. 0: off; timm's recipes use 0.8. Single-label images only."
        },
    )
    cutmix_alpha: float = field(
        default=0.0,
        metadata={
            "help": "CutMix (https://arxiv.org/abs/1905.04899): paste a box of another training image; labels mix by "
            "area, Beta(alpha, alpha) per image. 0: off; timm's recipes use 1.0. Single-label images only."
        },
    )
    mixup_prob: float = field(
        default=1.0, metadata={"help": "Probability that a training batch is mixed (mixup or cutmix) at all."}
    )
    mixup_switch_prob: float = field(
        default=0.5, metadata={"help": "With both mixup and cutmix on: probability that a mixed batch uses cutmix."}
    )
    multi_label: bool = field(
        default=False,
        metadata={
            "help": "Several labels per example (sigmoid + binary cross-entropy): the label column holds a list "
            "of labels, or a string of them joined by `multi_label_separator`."
        },
    )
    multi_label_threshold: float = field(
        default=0.5, metadata={"help": "A label is predicted when its sigmoid probability reaches this."}
    )
    multi_label_separator: str = field(
        default=",", metadata={"help": "Separator of labels in a string label column (multi-label only)."}
    )
    multi_label_tune_threshold: bool = field(
        default=False,
        metadata={
            "help": "Multi-label: after training, choose the threshold (0.05-0.95) that maximises "
            "`metric_for_best_model` on the validation split and use it for the test split, `predict` and the "
            "model card (stored in config.json as `multi_label_threshold`). Validation scores are then optimistic."
        },
    )
    class_weights: str = field(
        default="none",
        metadata={
            "help": "Single-label classification: weight the cross-entropy per class. `none`; `auto` (n / (k x "
            "count), scikit-learn's `balanced`, from the training labels); or one weight per label in label order, "
            "comma-separated on the command line (`1,5`) or a YAML list. Reported in the model card."
        },
    )
    tokens_column: str = field(
        default="tokens",
        metadata={
            "help": "Token classification: column holding the words of each sentence (a list, or a string split on "
            "whitespace). CoNLL text files (.conll, .txt) give `tokens` and `ner_tags`."
        },
    )
    tags_column: str = field(
        default="ner_tags",
        metadata={
            "help": "Token classification: column holding one tag per word (BIO/IOB2: O, B-PER, I-PER, ...), as a list "
            "of names or ids (a `Sequence(ClassLabel)`), or a string split on whitespace."
        },
    )
    tag_scheme: str = field(
        default="iob2",
        metadata={
            "help": "Token classification: `iob2` (BIO: every entity starts with B-; checked, a broken sequence is an "
            "error naming the row) or `iob1` (B- only between two adjacent entities of one type, as in the original "
            "CoNLL-2003 files; converted to IOB2 when read)."
        },
    )
    label_all_subtokens: bool = field(
        default=False,
        metadata={
            "aliases": ["--label_all_tokens", "--label-all-tokens"],
            "help": "Token classification: give every sub-token of a word the word's tag (B- becomes I- after the "
            "first) instead of only the first sub-token (-100 elsewhere). Training only: evaluation always scores "
            "one tag per word, the first sub-token's.",
        },
    )
    data_private: bool | None = field(
        default=None,
        metadata={
            "help": "Whether the training data is private. Default: private for local files (`train_file`, a "
            "local dataset folder), public for a Hub dataset id or a `packaged:` set; the resolved value is "
            "recorded in `run_config.yaml`. A model trained on private data is only pushed to a private Hub repo "
            "unless you set this to false or pass `hf-finetune push --allow-private-data-public`: weights can "
            "memorise training examples. Set it to true for a private Hub dataset."
        },
    )
    extra_metrics: list[str] = field(
        default_factory=list,
        metadata={
            "help": "Extra `evaluate` metrics: Hub metric ids when online, or paths of local metric scripts. "
            "Accuracy, F1, precision and recall come from scikit-learn and need nothing extra."
        },
    )


@dataclass
class StrategyArguments:
    """Which parts of the pretrained model are trained, and how."""

    strategy: str = field(
        default="full",
        metadata={
            "help": "Transfer strategy (`hf-finetune strategies` lists them). Compose with `+` on the command "
            "line (`freeze_bottom+llrd`) or a YAML list. Each strategy's own options follow, prefixed by its name."
        },
    )

    @property
    def strategy_names(self) -> list[str]:
        return [s.strip() for s in self.strategy.split("+") if s.strip()]


# Fields FinetuneTrainingArguments adds to TrainingArguments (every other field it declares only
# changes a TrainingArguments default).
OWN_TRAINING_FIELDS = frozenset({"auto_batch_size", "ema_decay", "ema_warmup", "fast_dropout", "precision"})
# Recorded in run_config.yaml even when equal to the default: what the run ran in must be in its record.
ALWAYS_RECORDED = frozenset({"output_dir", "precision"})


@dataclass
class FinetuneTrainingArguments(TrainingArguments):
    """`transformers.TrainingArguments` with the defaults fine-tuning wants.

    Defaults changed from `TrainingArguments`, and why:
    - `output_dir`: derived from the recipe (`outputs/<recipe>-<strategy>`) so reruns find it.
    - `learning_rate` None -> the strategy's default: 2e-5 for `full` (the BERT paper's fine-tuning
      range, ~10x below from-scratch training), higher for a linear probe, adapters or `scratch`.
    - `num_train_epochs` 3, `warmup_steps` 0.1 (a share when < 1): the standard fine-tuning schedule.
    - `per_device_train_batch_size` 32 / eval 64: fits a base model at 128 tokens on a laptop.
    - `eval_strategy`/`save_strategy` "epoch" + `load_best_model_at_end`: keep the best epoch,
      judged by `metric_for_best_model` "macro_f1" (robust to class imbalance, unlike accuracy).
    - `save_total_limit` 2: the best and the last checkpoint; optimizer states are large.
    - `logging_steps` 10: small data sets have few steps; 500 would log nothing.
    - `train_sampling_strategy` "group_by_length": batches of similar length pad less; measured
      here 2.6x faster on CPU (50 vs 19 samples/s, MiniLM on fortunes). `StrategyTrainer` sorts
      larger groups than Trainer does: 2.8% of positions padding on 1,600 fortunes, vs 13.5%
      (Trainer's grouping) and 66.5% (random batches).
    - `report_to` "none": no tracker unless asked (`--report_to tensorboard`).
    - `hub_strategy` "end" (not "every_save"): with push_to_hub, one push of the finished model unless
      checkpoints are asked for (`hf_finetune.training.hub_checkpoints`).
    """

    output_dir: str | None = field(
        default=None, metadata={"help": "Where the model and reports go. Default: outputs/<recipe>-<strategy>."}
    )
    learning_rate: float | None = field(
        default=None,
        metadata={"help": "Peak learning rate (AdamW). Default: the strategy's (`hf-finetune strategies` shows it)."},
    )
    num_train_epochs: float = field(default=3.0, metadata={"help": "Number of passes over the training data."})
    warmup_steps: float = field(
        default=0.1, metadata={"help": "Linear LR warm-up: a number of steps, or a share of all steps when < 1."}
    )
    per_device_train_batch_size: int = field(default=32, metadata={"help": "Training batch size per process."})
    per_device_eval_batch_size: int = field(default=64, metadata={"help": "Evaluation batch size per process."})
    eval_strategy: str = field(default="epoch", metadata={"help": "When to evaluate: no, steps or epoch."})
    save_strategy: str = field(default="epoch", metadata={"help": "When to checkpoint: no, steps, epoch or best."})
    load_best_model_at_end: bool = field(
        default=True, metadata={"help": "Reload the best checkpoint (by `metric_for_best_model`) at the end."}
    )
    metric_for_best_model: str | None = field(default="macro_f1", metadata={"help": "Metric that picks the best."})
    greater_is_better: bool | None = field(default=True, metadata={"help": "Whether a larger metric is better."})
    save_total_limit: int | None = field(default=2, metadata={"help": "Checkpoints kept on disk."})
    logging_steps: float = field(default=10, metadata={"help": "Log the training loss every N steps."})
    train_sampling_strategy: str = field(
        default="group_by_length",
        metadata={"help": "random, sequential or group_by_length (similar lengths per batch: less padding)."},
    )
    report_to: None | str | list[str] = field(
        default="none",
        metadata={
            "help": "Experiment trackers, comma-separated: none, tensorboard, trackio (both local: the `tracking` "
            "extra), wandb, mlflow, ..."
        },
    )
    # Example scripts' switches: `hf-finetune train` always trains, evaluates on validation and scores the
    # test split when there is one, so they default to on and `false` is refused (settings/ignored.py).
    do_train: bool = field(default=True, metadata={"help": "Always on: train trains (`false` is refused)."})
    do_eval: bool = field(
        default=True, metadata={"help": "Always on: the validation split is scored (`false` is refused)."}
    )
    do_predict: bool = field(
        default=True, metadata={"help": "Always on: the test split, when there is one, is scored (`false` is refused)."}
    )
    hub_strategy: str = field(
        default="end",
        metadata={
            "help": "With push_to_hub: `end` pushes the finished model once; `every_save` also pushes the model at "
            "every checkpoint; `checkpoint` also the whole checkpoint to last-checkpoint/ (what `--resume hub` "
            "continues from); `all_checkpoints` each checkpoint to its own folder."
        },
    )
    precision: str = field(
        default="auto",
        metadata={
            "help": "Arithmetic for training, evaluation and prediction: auto (bf16 on GPUs that have it, else fp16; "
            "bf16 autocast on CPUs with native bf16 where a cached matmul probe shows it pays, else fp32), fp32, "
            "bf16 or fp16 (GPUs only). Weights stay fp32. --bf16/--fp16 and a launch config's mixed_precision "
            "count as explicit choices; $HF_FINETUNE_PRECISION pins what auto means.",
            "choices": list(PRECISIONS),
        },
    )
    fast_dropout: bool = field(
        default=True,
        metadata={
            "help": "On CPUs, draw dropout masks from 64-bit random words, four elements per draw, instead of torch's "
            "per-element bernoulli_ (the largest item of a bf16 training step): the same keep probability (p rounded "
            "to 1/65536) and scaling, seeded and resumable, 5x cheaper. false: torch's own dropout stream."
        },
    )
    auto_batch_size: bool = field(
        default=False,
        metadata={
            "help": "On out-of-memory, retry with a smaller per-device batch and more gradient accumulation steps, "
            "so the effective batch (and the tuned learning rate) stays the same. Trainer's own "
            "`auto_find_batch_size`, which this turns on, would shrink the effective batch instead."
        },
    )

    ema_decay: float = field(
        default=0.0,
        metadata={
            "help": "Keep an exponential moving average of the weights (decay per optimizer step, e.g. 0.998); "
            "evaluation, best-checkpoint selection and the saved model use it. 0: off."
        },
    )
    ema_warmup: bool = field(
        default=True,
        metadata={
            "help": "EMA warm-up: the decay at step t is min(ema_decay, (1 + t) / (10 + t)), so the average follows "
            "the early, fast-moving weights instead of staying near the start (TensorFlow's `num_updates` rule)."
        },
    )

    def __post_init__(self):
        # TrainingArguments replaces a missing output_dir with "trainer_output"; remember that the
        # user gave none, so `finalize` can derive the deterministic per-recipe folder instead.
        self.output_dir_given = self.output_dir is not None
        # TrainingArguments sets up the process group inside __post_init__, so what the launcher asked
        # for is checked, and CPU-only multi-process runs are pointed at gloo, before that.
        refuse_ignored_training_flags(self)
        self.report_to = split_report_to(self.report_to)  # `--report_to tensorboard,trackio`
        check_report_to(self.report_to)
        check_launch_environment(self)
        run_on_cpu_without_accelerators(self)
        self.precision_choice = resolve_training_precision(self)  # sets bf16/fp16 for Trainer
        if self.auto_batch_size:  # the search is Trainer's; `StrategyTrainer` keeps the effective batch
            self.auto_find_batch_size = True
        super().__post_init__()


@dataclass
class RunConfig:
    """One resolved run: the dataclasses plus the recipe it came from."""

    run: RunArguments
    model: ModelArguments
    data: DataArguments
    strategy: StrategyArguments
    training: FinetuneTrainingArguments
    recipe: str | None = None
    options: tuple = ()  # the strategies' option dataclasses, in `config_classes()` order

    @classmethod
    def from_sections(cls, sections, recipe: str | None) -> RunConfig:
        """`sections` in `config_classes()` order, as HfArgumentParser returns them."""
        run, model, data, strategy, *options, training = sections
        return cls(run, model, data, strategy, training, recipe=recipe, options=tuple(options))

    def sections(self) -> tuple:
        return (self.run, self.model, self.data, self.strategy, *self.options, self.training)

    def strategy_options(self, arguments_class: type):
        """The options dataclass a strategy or task declared (`FreezeBottomArguments`), filled from the recipe."""
        return next(o for o in self.options if isinstance(o, arguments_class))

    def to_recipe(self) -> dict[str, Any]:
        """A flat recipe that reproduces this run (secrets removed)."""
        out: dict[str, Any] = {}
        for section in self.sections()[:-1]:
            for f in dataclasses.fields(section):
                out[f.name] = _plain(getattr(section, f.name))
        # TrainingArguments has ~115 fields; record those that differ from our defaults, plus the
        # output folder, so the file stays readable and is still a complete description of the run.
        defaults = _training_defaults()
        for f in dataclasses.fields(self.training):
            if not f.init or f.name in SECRET_FIELDS:
                continue
            value = _plain(getattr(self.training, f.name))
            if f.name in ALWAYS_RECORDED or value != defaults.get(f.name):
                out[f.name] = value
        return out


@functools.cache
def _training_defaults() -> dict[str, Any]:
    """Defaults as `__post_init__` normalises them (enums, report_to lists), computed once."""
    args = FinetuneTrainingArguments(output_dir="x")
    return {f.name: _plain(getattr(args, f.name)) for f in dataclasses.fields(args) if f.init}


def _plain(value: Any) -> Any:
    """Enums and tuples as plain YAML values, so `run_config.yaml` loads back as a recipe."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def looks_like_local_path(name: str) -> bool:
    """A name that can only mean a local path (Hub ids are `name` or `org/name`), so a missing one is a typo."""
    return name.startswith((".", "/", "~")) or name.count("/") > 1 or name.endswith("/")


def parse_class_weights(value: str) -> str | list[float]:
    """`none`, `auto`, or a list of positive weights (`1,5` or `[1, 5]`)."""
    text = str(value).strip()
    if text.lower() in ("none", "auto"):
        return text.lower()
    try:
        weights = [float(v) for v in text.strip("[]").split(",") if v.strip()]
    except ValueError:
        weights = []
    if not weights or any(not w > 0 or w == float("inf") for w in weights):
        raise UserError(
            f"class_weights must be none, auto, or positive numbers, one per label (e.g. 1,5), got '{value}'"
        )
    return weights


def data_is_local(args: DataArguments) -> bool:
    """Local files (a data file, a local dataset folder) rather than a Hub id or a `packaged:` set."""

    if args.train_file:
        return True  # local files win over dataset_name (`data.load_raw_splits`)
    name = args.dataset_name
    if not name or is_packaged(name):
        return False
    return Path(name).expanduser().exists() or looks_like_local_path(name)


def write_run_config(cfg: RunConfig, path: Path) -> None:
    header = (
        "# Resolved configuration of this run; a valid recipe. Repeat the run with:\n"
        f"#   hf-finetune train --config {path}\n"
    )
    path.write_text(header + yaml.safe_dump(cfg.to_recipe(), sort_keys=False), encoding="utf-8")
