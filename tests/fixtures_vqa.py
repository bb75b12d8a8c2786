"""Tiny copies of the COCO-QA, DAQUAR and Recipes5k layouts, with the real file names and
the known variants, for the loader tests and the suites test.

Images are 8 x 8 solid colours (the colour follows the answer / dish, so an end-to-end
run has something to learn); each builder returns what the tests check against.
"""

from __future__ import annotations

from pathlib import Path

#: (question, answer, COCO image id, type) per split; image 9 has three train questions
#: and image 42 two (groups); COCO_FILES writes the ids in all three file-name variants
COCO_QA = {
    "train": [
        ("what is on the table ?", "cat", 9, 0),
        ("how many dogs are on the grass ?", "two", 9, 1),
        ("what is the color of the bus ?", "red", 9, 2),
        ("where is the man sitting ?", "bench", 25, 3),
        ("what is sitting on the couch ?", "cat", 30, 0),
        ("what is the color of the car ?", "red", 42, 2),
        ("what is parked near the road ?", "car", 42, 0),
        ("how many cats are on the bed ?", "two", 49, 1),
    ],
    "test": [
        ("what is lying on the bed ?", "cat", 61, 0),
        ("what is the color of the kite ?", "red", 61, 2),
        ("where are the people standing ?", "bench", 72, 3),
        ("how many horses are in the field ?", "two", 74, 1),
    ],
}
#: where each COCO image id is written (the three naming variants, nested folders)
COCO_FILES = {9: "images/train2014/COCO_train2014_{:012d}.jpg", 25: "images/train2014/COCO_train2014_{:012d}.jpg",
              30: "train2014/COCO_train2014_{:012d}.jpg", 42: "coco2017/train2017/{:012d}.jpg",
              49: "images/train2014/COCO_train2014_{:012d}.jpg", 61: "images/val2014/COCO_val2014_{:012d}.jpg",
              72: "images/val2014/COCO_val2014_{:012d}.jpg", 74: "val2017/{:012d}.jpg"}

#: DAQUAR (question, answer line) per split; images 1-3 train, 4-5 test
DAQUAR = {
    "train": [
        ("what is on the right side of the table in the image1 ?", "chair"),
        ("what are the objects on the desk in the image1 ?", "lamp, book"),
        ("what is in front of the door in the image2 ?", "table"),
        ("how many chairs are in the image2 ?", "2"),
        ("what is above the bed in the image3 ?", "picture"),
        ("what is on the floor in the image3 ?", "book, chair"),
    ],
    "test": [
        ("what is left of the sofa in the image4 ?", "lamp"),
        ("what is under the window in the image4 ?", "table, chair"),
        ("what is on the wall in the image5 ?", "picture"),
        ("what is behind the chair in the image5 ?", "book"),
    ],
}

RECIPES_CLASSES = ("apple_pie", "pizza", "sushi")
#: per split: (image line as published, ingredient line index)
RECIPES = {
    "train": [("apple_pie/0_apple_pie_hostedLargeUrl.jpg", 0), ("apple_pie/1_dutch_apple_pie.jpg", 1),
              ("pizza/0_margherita_pizza.jpg", 2), ("pizza/1_pepperoni_pizza.jpg", 3),
              ("sushi/0_salmon_roll.jpg", 4), ("sushi/1_tuna_nigiri.jpg", 5)],
    "val": [("images/apple_pie/2_crumble_apple_pie.jpg", 6), ("pizza/2_veggie_pizza.jpg", 7),
            ("sushi/2_maki.jpg", 8)],
    "test": [("apple_pie/3_apple_pie.jpg", 9), ("pizza/3_white_pizza.jpg", 10), ("sushi/3_california_roll.jpg", 11)],
}
RECIPES_INGREDIENTS = (
    "apples,sugar,butter,flour,cinnamon", "apples,brown sugar,butter,flour", "dough,tomato,mozzarella,basil",
    "dough,tomato sauce,pepperoni,mozzarella", "rice,salmon,nori,rice vinegar", "rice,tuna,wasabi",
    "apples,oats,butter,sugar", "dough,tomato,peppers,onion,mozzarella", "rice,nori,cucumber,avocado",
    "apples,pastry,sugar,lemon juice", "dough,ricotta,mozzarella,garlic", "rice,crab,avocado,cucumber,nori",
)
COLOURS = {"cat": (200, 40, 40), "two": (40, 200, 40), "red": (40, 40, 200), "bench": (200, 200, 40),
           "car": (40, 200, 200)}


def write_image(path: Path, colour: tuple[int, int, int] = (120, 120, 120), size: int = 8) -> Path:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), colour).save(path)
    return path


def make_coco_qa(root: Path, with_types: bool = True, skip_images: tuple[int, ...] = ()) -> Path:
    """COCO-QA's train/ and test/ folders and COCO images under ``root`` (image ids in
    ``skip_images`` get no file)."""
    for split, rows in COCO_QA.items():
        folder = root / split
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "questions.txt").write_text("".join(f"{q}\n" for q, _, _, _ in rows))
        (folder / "answers.txt").write_text("".join(f"{a}\n" for _, a, _, _ in rows))
        (folder / "img_ids.txt").write_text("".join(f"{i}\n" for _, _, i, _ in rows))
        if with_types:
            (folder / "types.txt").write_text("".join(f"{t}\n" for _, _, _, t in rows))
        for _, answer, image_id, _ in rows:
            if image_id not in skip_images:
                write_image(root / COCO_FILES[image_id].format(image_id), COLOURS[answer])
    return root


def make_daquar(root: Path, subset: str = "all", skip_images: tuple[int, ...] = ()) -> Path:
    """DAQUAR's question files (CRLF line ends in test, as some copies have) and
    nyu_depth_images/imageN.png under ``root``."""
    names = {"all": "qa.894.raw.{}.txt", "reduced": "qa.37.raw.reduced.{}.txt"}[subset]
    root.mkdir(parents=True, exist_ok=True)
    for split, rows in DAQUAR.items():
        ending = "\r\n" if split == "test" else "\n"
        text = "".join(f"{q}{ending}{a}{ending}" for q, a in rows)
        (root / names.format(split)).write_bytes(text.encode())
    for n in range(1, 6):
        if n not in skip_images:
            write_image(root / "nyu_depth_images" / f"image{n}.png", (40 * n, 100, 200 - 30 * n))
    return root


def make_recipes5k(root: Path, skip_images: tuple[str, ...] = ()) -> Path:
    """Recipes5k's annotations/ and images/<dish>/ under ``root`` (both ingredient files)."""
    notes = root / "annotations"
    notes.mkdir(parents=True, exist_ok=True)
    (notes / "classes_Recipes5k.txt").write_text("".join(f"{c}\n" for c in RECIPES_CLASSES))
    (notes / "ingredients_Recipes5k.txt").write_text("".join(f"{line}\n" for line in RECIPES_INGREDIENTS))
    simplified = [",".join(item.split()[-1] for item in line.split(",")) for line in RECIPES_INGREDIENTS]
    (notes / "ingredients_simplified_Recipes5k.txt").write_text("".join(f"{line}\n" for line in simplified))
    for split, rows in RECIPES.items():
        (notes / f"{split}_images.txt").write_text("".join(f"{name}\n" for name, _ in rows))
        (notes / f"{split}_labels.txt").write_text("".join(f"{index}\n" for _, index in rows))
        for name, _ in rows:
            relative = name.removeprefix("images/")
            if relative not in skip_images:
                dish = RECIPES_CLASSES.index(relative.split("/")[0])
                write_image(root / "images" / relative, ((90 * dish) % 255, 120, 200 - 60 * dish))
    return root
