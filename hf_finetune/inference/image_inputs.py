"""Images to predict on: an image folder, a file listing image paths (CSV, JSONL, ...), or a data set with an
`Image` column (a `packaged:` name or a saved data set folder). Images are opened batch by batch, so a
folder of many photos never sits in memory at once; one that cannot be read becomes an `error` on its own
row instead of stopping the run.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from hf_finetune.data.files import load_named_splits, read_data_file
from hf_finetune.errors import UserError, first_line
from hf_finetune.settings.packaged import is_packaged

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


@dataclass
class ImageInputs:
    """Per row: `names` (what the output's `image` column shows), `sources` (a path, an `Image` cell or a PIL
    image: opened later), and the gold `labels` where the input has them (a folder's class sub-folders)."""

    names: list[str]
    sources: list
    labels: list | None = None
    columns: dict = field(default_factory=dict)


def open_image(source):
    """(PIL image fully decoded, None) or (None, a short reason: file not found, not an image, truncated...)."""
    from PIL import Image

    try:
        if isinstance(source, Image.Image):
            return source, None
        if isinstance(source, dict):  # a datasets `Image` cell read without decoding
            source = io.BytesIO(source["bytes"]) if source.get("bytes") else source.get("path")
        if source is None or source == "":
            return None, "no image"
        if isinstance(source, (str, Path)) and Path(source).is_file() and Path(source).stat().st_size == 0:
            return None, "empty file, 0 bytes"
        image = Image.open(source)
        image.load()  # decode everything now: a truncated file fails here, not in the middle of a batch
        return image, None
    except FileNotFoundError:
        return None, "file not found"
    except Image.UnidentifiedImageError:
        return None, "not an image file"
    except Exception as exc:  # PIL raises several types for damaged files (OSError, SyntaxError, ValueError)
        return None, first_line(exc)


def folder_images(folder: Path) -> ImageInputs:
    """Every image file under the folder; the gold label is the class sub-folder's name where there is one."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise UserError(f"{folder} holds no image files ({', '.join(IMAGE_SUFFIXES[:5])}, ...)")
    names = [str(p.relative_to(folder)) for p in files]
    nested = all(p.parent != folder for p in files)
    labels = [p.parent.name for p in files] if nested else None
    return ImageInputs(names, [str(p) for p in files], labels)


def listed_images(path: Path, image_column: str | tuple[str, ...]) -> ImageInputs:
    """A table with one image per row: paths (relative ones start at the file's folder) or `Image` cells.
    `image_column` may be several candidates: the first the file has is read."""
    from datasets import Image

    dataset = read_data_file(str(path))
    candidates = (image_column,) if isinstance(image_column, str) else image_column
    column = next((c for c in candidates if c in dataset.column_names), None)
    if column is None:
        raise UserError(f"input {path} has no column '{candidates[0]}' (--image_column); columns: "
                        f"{', '.join(dataset.column_names)}")  # fmt: skip
    isimage = isinstance(dataset.features[column], Image)
    return dataset_images(dataset, column, base=path.resolve().parent, isimage=isimage)


def dataset_images(dataset, image_column: str, base: Path | None = None, isimage: bool = True) -> ImageInputs:
    """Rows of a `datasets.Dataset`; `Image` cells are read undecoded so a bad one fails only its own row."""
    from datasets import Image

    if isimage:
        dataset = dataset.cast_column(image_column, Image(decode=False))
        sources = list(dataset[image_column])
        names = [cell.get("path") or f"row {i}" for i, cell in enumerate(sources)]
    else:
        names = ["" if v is None else str(v) for v in dataset[image_column]]
        sources = [str((base or Path.cwd()) / n) if n else "" for n in names]
    columns = {name: dataset[name] for name in dataset.column_names if name != image_column}
    return ImageInputs(names, sources, None, columns)


def read_image_inputs(source: str, image_column: str | tuple[str, ...] = "image", split: str = "test") -> ImageInputs:
    """A folder of images, a file listing them, or a data set name/folder (its `split`)."""

    path = Path(source).expanduser()
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageInputs([path.name], [str(path)])
    if path.is_file():
        return listed_images(path, image_column)
    saved = path.is_dir() and ((path / "dataset_dict.json").exists() or (path / "state.json").exists())
    if path.is_dir() and not saved:
        return folder_images(path)
    if not (saved or is_packaged(source)):
        raise UserError(f"--input {source} does not exist: pass an image, an image folder, or a file of image paths")
    splits = load_named_splits(source)
    if split not in splits:
        raise UserError(f"{source} has no split '{split}'; its splits: {', '.join(splits)} (choose one with --split)")
    dataset = splits[split]
    image_column = image_column if isinstance(image_column, str) else image_column[0]
    if image_column not in dataset.column_names:
        raise UserError(f"{source} has no column '{image_column}'; columns: {', '.join(dataset.column_names)}")
    return dataset_images(dataset, image_column)
