import logging
from dataclasses import dataclass, field

from transformers import TrainerCallback

from hf_finetune.data.splits import LabelledData
from hf_finetune.errors import UserError
from hf_finetune.strategies import register_strategy
from hf_finetune.strategies.base import Strategy
from hf_finetune.strategies.dann.layers import (
    TARGET_LABEL,
    DomainClassifier,
    classification_layer,
    reversal_weight,
    reverse_gradient,
    safe_classification_loss,
)
from hf_finetune.strategies.dann.target_domain import load_target_domain, mix_domains
from hf_finetune.strategies.plan import unwrap_peft

logger = logging.getLogger("hf_finetune")
# Where the domain classifier hangs on the model while it trains (removed before the model is saved).
DOMAIN_CLASSIFIER = "dann_domain_classifier"
TASKS = ("text_classification", "image_classification")


@dataclass
class DannArguments:
    _argument_group_name = "dann strategy"

    dann_target_dataset: str | None = field(
        default=None,
        metadata={
            "help": "Target-domain data: a `packaged:` name, Hub id or folder with the source's columns. Its train "
            "split gives unlabelled inputs (labels there are dropped); its test split, when labelled, is scored "
            "each epoch (`eval_target_*`) and at the end, for evaluation only."
        },
    )
    dann_target_train_file: str | None = field(
        default=None,
        metadata={"help": "Target-domain inputs as a local file (.csv, .jsonl, ...); wins over dann_target_dataset."},
    )
    dann_target_test_file: str | None = field(
        default=None, metadata={"help": "Labelled target-domain file, scored but never trained on (optional)."}
    )
    dann_weight: float = field(
        default=1.0,
        metadata={
            "help": "Largest gradient-reversal weight lambda: how hard the encoder is pushed to make the domains "
            "indistinguishable (Ganin et al. 2016, https://arxiv.org/abs/1505.07818, used 1)."
        },
    )
    dann_gamma: float = field(
        default=10.0,
        metadata={
            "help": "Steepness of the lambda schedule dann_weight * (2 / (1 + exp(-gamma * p)) - 1), p = training "
            "progress 0..1 (the paper's 10: lambda reaches 0.76 x dann_weight at p = 0.2)."
        },
    )
    dann_hidden: int = field(
        default=256,
        metadata={"help": "Width of the domain classifier's two hidden layers (an MLP on the pooled features)."},
    )


@register_strategy
class Dann(Strategy):
    """Domain-adversarial training (Ganin et al. 2016): labelled source data plus unlabelled target-domain data.

    A domain classifier on the pooled features (the input of the classification layer) learns source
    vs target behind a gradient-reversal layer, so the encoder learns features that classify the source
    labels and do not tell the domains apart; the classifier then carries over to the target domain.
    The domain classifier trains with the head's learning rate and is removed before the model is saved:
    the output folder is an ordinary classifier. Composes with the strategies that choose what trains
    (`full`, `freeze_bottom`, `llrd`, `l2sp`, ...); logs `dann_domain_accuracy`, `dann_domain_loss` and
    `dann_lambda` with the training loss.
    """

    name = "dann"
    summary = "domain-adversarial training on unlabelled target-domain data (gradient reversal, Ganin et al. 2016)"
    Arguments = DannArguments
    refuses = {
        "lora": "dann adds a domain classifier to the model while it trains; adapters would save it with the head",
        "ia3": "dann adds a domain classifier to the model while it trains; adapters would save it with the head",
    }

    def __init__(self, cfg):
        super().__init__(cfg)
        a = self.args
        if not (a.dann_target_dataset or a.dann_target_train_file):
            raise UserError(
                "strategy dann needs target-domain data: set dann_target_dataset (a packaged name, Hub id or folder) "
                "or dann_target_train_file"
            )
        if a.dann_weight < 0 or a.dann_gamma <= 0 or a.dann_hidden < 1:
            raise UserError(
                f"dann_weight must be >= 0, dann_gamma > 0 and dann_hidden >= 1 (got {a.dann_weight:g}, "
                f"{a.dann_gamma:g}, {a.dann_hidden})"
            )
        if cfg.run.task not in TASKS or cfg.data.multi_label:
            raise UserError(f"strategy dann is for single-label {' and '.join(TASKS)}, not {cfg.run.task}"
                            + (" with multi_label" if cfg.data.multi_label else ""))  # fmt: skip
        if (
            cfg.data.class_weights != "none"
            or cfg.training.label_smoothing_factor
            or cfg.data.mixup_alpha
            or cfg.data.cutmix_alpha
        ):
            # All replace the model's loss outside the model, where the unlabelled rows cannot be told apart.
            raise UserError("strategy dann does not combine with class_weights, label_smoothing_factor or "
                            "mixup/cutmix; remove them")  # fmt: skip
        if cfg.training.train_sampling_strategy == "group_by_length":
            # Domains often differ in length (short -> long texts): length-sorted batches would be one domain each.
            cfg.training.train_sampling_strategy = "random"
        self.progress = 0.0
        self.features = None  # pooled features of the current training batch
        self.domain_loss = None  # the current batch's domain loss, handed to the trainer by `extra_loss`
        self.hits = self.seen = 0  # domain classifier's correct / total since the last log
        self.losses: list[float] = []
        self.hooks: list = []
        self.model = None

    @property
    def reversal_weight(self) -> float:

        return reversal_weight(self.progress, self.args.dann_weight, self.args.dann_gamma)

    def prepare_model(self, model, new_keys):

        inner = unwrap_peft(model)
        classifier = classification_layer(inner)
        setattr(inner, DOMAIN_CLASSIFIER, DomainClassifier(classifier.in_features, self.args.dann_hidden))
        self.model = inner
        self.hooks = [
            classifier.register_forward_pre_hook(self._keep_features),
            inner.register_forward_hook(self._add_domain_loss, with_kwargs=True),
        ]
        return model

    def _keep_features(self, module, args):
        if module.training:
            self.features = args[0]

    def _add_domain_loss(self, module, args, kwargs, output):
        """After a training forward: the classification loss over labelled rows only, and the domain loss."""
        import torch

        labels, features, self.features = kwargs.get("labels"), self.features, None
        if not module.training or labels is None or features is None:
            return None
        output["loss"] = safe_classification_loss(output["logits"], labels)
        is_target = (labels.view(-1) == TARGET_LABEL).to(features.dtype)
        domain_logits = getattr(module, DOMAIN_CLASSIFIER)(reverse_gradient(features, self.reversal_weight))
        self.domain_loss = torch.nn.functional.binary_cross_entropy_with_logits(domain_logits, is_target)
        self.hits += int(((domain_logits > 0) == (is_target > 0.5)).sum())
        self.seen += len(is_target)
        self.losses.append(float(self.domain_loss.detach()))
        return output

    def extend_data(self, task, data, processor, encoded):

        a = self.args
        target = load_target_domain(
            task, self.cfg, a.dann_target_dataset, a.dann_target_train_file, a.dann_target_test_file, data.label_names
        )
        splits = {"train": mix_domains(data.splits["train"], target.train)}
        if target.test is not None:
            splits["target"] = target.test
        mixed = task.encode(LabelledData(splits=splits, label_names=data.label_names, source=target.source), processor)
        encoded["train"] = mixed["train"]
        logger.info(
            "dann: %d labelled source + %d unlabelled target (%s) training examples; target evaluation: %s",
            len(data.splits["train"]),
            len(target.train),
            target.source,
            f"{len(target.test)} labelled examples" if target.test is not None else "none (no labelled test split)",
        )
        return {"target": mixed["target"]} if "target" in mixed else {}

    def extra_loss(self):
        loss, self.domain_loss = self.domain_loss, None
        return loss

    def callbacks(self):
        return [DannCallback(self)]

    def remove_domain_classifier(self) -> None:
        """Unhook and drop the domain classifier: what is saved is the plain classifier."""
        for hook in self.hooks:
            hook.remove()
        self.hooks = []
        if self.model is not None and hasattr(self.model, DOMAIN_CLASSIFIER):
            delattr(self.model, DOMAIN_CLASSIFIER)

    def log_values(self) -> dict:
        """Domain-classifier accuracy and loss since the last log, and the current reversal weight."""
        values = {"dann_lambda": round(self.reversal_weight, 4)}
        if self.seen:
            values["dann_domain_accuracy"] = round(self.hits / self.seen, 4)
            values["dann_domain_loss"] = round(sum(self.losses) / len(self.losses), 4)
        self.hits = self.seen = 0
        self.losses = []
        return values


class DannCallback(TrainerCallback):
    """Moves the reversal schedule with training progress, logs the domain classifier, removes it at the end."""

    def __init__(self, strategy: Dann):
        self.strategy = strategy

    def on_step_begin(self, args, state, control, **kwargs):
        self.strategy.progress = state.global_step / max(state.max_steps, 1)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs is None or "loss" not in logs:  # training logs only, not evaluation
            return
        values = self.strategy.log_values()
        logs.update(values)
        if state.log_history:  # Trainer appended a copy of `logs` before calling us: trainer_state.json reads that
            state.log_history[-1].update(values)

    def on_train_end(self, args, state, control, **kwargs):
        self.strategy.remove_domain_classifier()
