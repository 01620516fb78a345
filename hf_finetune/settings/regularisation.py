"""Range checks of the regularisation options (mixup/cutmix, random erasing, label smoothing, EMA, dropout),
run with the other config checks so a typo stops a run before any data is read.

Which task may use which option is the task's decision (`tasks.base`); this module only knows numbers.
"""

from __future__ import annotations

from hf_finetune.errors import UserError


def _check_share(name: str, value: float | None, upper_open: bool = False) -> None:
    if value is None:
        return
    if not (0 <= value < 1 if upper_open else 0 <= value <= 1):
        bound = "[0, 1)" if upper_open else "[0, 1]"
        raise UserError(f"{name} must be in {bound}, got {value}")


def check_regularisation(cfg) -> None:
    data, model, training = cfg.data, cfg.model, cfg.training
    for name in ("random_erasing", "mixup_prob", "mixup_switch_prob"):
        _check_share(name, getattr(data, name))
    for name in ("mixup_alpha", "cutmix_alpha"):
        if getattr(data, name) < 0:
            raise UserError(f"{name} must be 0 (off) or positive, got {getattr(data, name)}")
    for name in ("drop_path_rate", "hidden_dropout", "attention_dropout"):
        _check_share(name, getattr(model, name), upper_open=True)
    _check_share("label_smoothing_factor", training.label_smoothing_factor, upper_open=True)
    # 1.0 would never move; a decay below 0.9 averages over fewer than ~10 steps, which is no average.
    if training.ema_decay and not 0.9 <= training.ema_decay < 1:
        raise UserError(f"ema_decay must be 0 (off) or in [0.9, 1), e.g. 0.998; got {training.ema_decay}")
    mixing = data.mixup_alpha > 0 or data.cutmix_alpha > 0
    if mixing and data.multi_label:
        raise UserError(
            "mixup/cutmix are for single-label classification; remove mixup_alpha/cutmix_alpha or multi_label"
        )
