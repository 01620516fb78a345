"""Domain-adversarial training (DANN, Ganin et al. 2016, https://arxiv.org/abs/1505.07818), whole in one folder:
the strategy (`strategy.py`), its gradient-reversal layer and domain classifier (`layers.py`), and the
unlabelled target-domain data it mixes into training (`target_domain.py`).
"""

from hf_finetune.strategies.dann.strategy import Dann  # registers the strategy

__all__ = ["Dann"]
