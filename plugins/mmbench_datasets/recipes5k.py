"""Recipes5k (Bolaños, Ferrà & Radeva 2017): 4,826 recipes of the 101 Food-101 dishes, each an
image and its ingredient list; the dish is the class, the ingredients the text.

Layout, under ``root``::

    annotations/classes_Recipes5k.txt          one dish name per line (101)
    annotations/ingredients_Recipes5k.txt      one recipe's ingredients per line, comma-separated
    annotations/ingredients_simplified_Recipes5k.txt   the same with 1,013 simplified ingredients
    annotations/{train,val,test}_images.txt    image paths relative to images/: <dish>/<file>.jpg
    annotations/{train,val,test}_labels.txt    per image, the 0-based line of its recipe's ingredients
    images/<dish>/*.jpg

The class of an image is its folder (``<dish>``), looked up in ``classes_Recipes5k.txt``;
``{split}_labels.txt`` indexes the ingredient lines, not the classes. Image lines may
carry a leading ``images/`` (tolerated). The official train / val / test split is used.
Each recipe is one image, so there are no groups. Recipes5k has no metadata, so no
tabular modality; the ingredients are the text.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mmbench.errors import UserError
from mmbench.params import Param
from mmbench.plugin import Dataset
from mmbench_datasets import loading

SPLITS = ("train", "val", "test")
CLASSES = "annotations/classes_Recipes5k.txt"
INGREDIENTS = {"full": "annotations/ingredients_Recipes5k.txt",
               "simplified": "annotations/ingredients_simplified_Recipes5k.txt"}
PUBLISHED = "http://www.ub.edu/cvub/recipes5k/"
ACCESS = "free download for research use"


class Recipes5k(Dataset):
    """Recipes5k: food images + ingredient lists; the dish (101 Food-101 classes) is the class."""

    name = "recipes5k"
    modalities = ("image", "text")
    task_kinds = ("multiclass",)
    citation = ("Bolaños, Ferrà & Radeva. Food Ingredients Recognition through Multi-label Learning. "
                "ICIAP 2017 Workshops.")
    parameters = (
        loading.ROOT,
        Param("ingredients", str, "full", "ingredient lists: as written (full, 3,213 ingredients) or "
              "simplified (1,013 base ingredients)", choices=tuple(INGREDIENTS)),
        Param("template", str, "{ingredients}", "text of a sample; field {ingredients} (the list, "
              "', '-separated)"),
        loading.ON_BAD_SAMPLE,
        loading.FINGERPRINT,
    )

    def __init__(self, **params):
        super().__init__(**params)
        loading.check_template(self.name, self.params["template"], {"ingredients": "flour, water, salt"})

    def task_kind(self) -> str:
        return "multiclass"

    def raw_modalities(self) -> tuple[str, ...]:
        return ("image", "text")

    def info(self) -> dict[str, str]:
        return {"text template": self.params["template"], "ingredients": INGREDIENTS[self.params["ingredients"]]}

    def fingerprint(self) -> str:
        files = self._files()
        images_root = Path(self.params["root"]) / "images"
        listed = {_relative(line) for split in SPLITS for line in loading.read_lines(files[f"{split}_images"])
                  if line.strip()}
        images = [images_root / name for name in sorted(listed) if (images_root / name).is_file()]
        return loading.fingerprint_files(self.name, self.params, list(files.values()), images)

    def load(self):
        from mmbench.data import DatasetTable

        files = self._files()
        classes = [c.strip() for c in loading.read_lines(files["classes"]) if c.strip()]
        class_index = {name: k for k, name in enumerate(classes)}
        recipes = loading.read_lines(files["ingredients"])
        bad = loading.BadSamples(self.name, self.params["on_bad_sample"])
        rows: list[dict] = []
        seen: dict[str, str] = {}
        images_root = Path(self.params["root"]) / "images"
        for split in SPLITS:
            names = loading.read_lines(files[f"{split}_images"])
            labels = loading.read_lines(files[f"{split}_labels"])
            if len(names) != len(labels):
                raise UserError(f"recipes5k: annotations/{split}_images.txt has {len(names)} lines but "
                                f"{split}_labels.txt {len(labels)}; they must pair line by line: re-extract "
                                "the annotations")
            for i, (line, label) in enumerate(zip(names, labels)):
                name = _relative(line)
                where = f"annotations/{split}_images.txt line {i + 1}"
                if not name:
                    bad.report(f"{split}:{i + 1}", f"empty image line ({where})")
                elif name in seen:
                    bad.report(name, f"listed in {seen[name]} and again in {split} ({where}): an image in two "
                               "places would leak between splits or count twice")
                else:
                    seen[name] = split
                    row = _sample(name, split, label.strip(), where, images_root, class_index, recipes, bad)
                    if row is not None:
                        rows.append(row)
        if not rows:
            raise UserError(f"recipes5k: no usable sample under {self.params['root']!r} ({len(bad.skipped)} skipped)")
        return loading.drop_broken_images(DatasetTable(
            ids=np.array([r["id"] for r in rows]), labels=np.array([r["label"] for r in rows], dtype=np.int64),
            task="multiclass", classes=tuple(classes),
            modalities={"image": [r["image"] for r in rows],
                        "text": [loading.render(self.params["template"], r) for r in rows]},
            split=np.array([r["split"] for r in rows]), skipped=bad.skipped), bad)

    def _files(self) -> dict[str, Path]:
        root = Path(self.params["root"])
        wanted = {"classes": CLASSES, "ingredients": INGREDIENTS[self.params["ingredients"]]}
        for split in SPLITS:
            wanted[f"{split}_images"] = f"annotations/{split}_images.txt"
            wanted[f"{split}_labels"] = f"annotations/{split}_labels.txt"
        missing = [name for name in wanted.values() if not (root / name).is_file()]
        if not (root / "images").is_dir():
            missing.append("images/<dish>/*.jpg")
        if missing:
            raise loading.missing_files(self.name, root, missing, PUBLISHED, ACCESS)
        return {key: root / name for key, name in wanted.items()}


def _relative(line: str) -> str:
    """An image line as a path under images/ ("images/pizza/1.jpg" and "pizza/1.jpg" alike)."""
    name = line.strip().replace("\\", "/").lstrip("/")
    return name.removeprefix("images/")


def _sample(name: str, split: str, label: str, where: str, images_root: Path, class_index: dict[str, int],
            recipes: list[str], bad: loading.BadSamples) -> dict | None:
    dish = name.split("/")[0] if "/" in name else ""
    if dish not in class_index:
        return bad.report(name, f"its folder {dish!r} ({where}) is not a class of classes_Recipes5k.txt")
    if not label.isdigit() or int(label) >= len(recipes):
        return bad.report(name, f"label {label!r} ({where} of the labels file) is not a line number of the "
                          f"ingredients file (0..{len(recipes) - 1})")
    ingredients = [item.strip() for item in recipes[int(label)].split(",") if item.strip()]
    if not ingredients:
        return bad.report(name, f"empty ingredient list (ingredients line {int(label)}, {where})")
    if not (images_root / name).is_file():
        return bad.report(name, f"image file images/{name} does not exist ({where})")
    return {"id": name, "split": split, "label": class_index[dish], "ingredients": ", ".join(ingredients),
            "image": str(images_root / name)}
