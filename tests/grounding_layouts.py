# Copyright 2026 The epmvg authors. Licensed under the Apache License, Version 2.0.
"""
Tiny grounding datasets written in each source's exact on-disk layout, for the tests that read them: Hub parquet
repos (lmms-lab/RefCOCO*, jxu124/refcoco*) with a COCO image folder, REFER toolkit folders, TransVG's split files and
Flickr30k Entities' raw files. Images are solid-colour JPEGs of the sizes the annotations give.
"""

import io
import json
import os
import pickle
from pathlib import Path

import torch
from datasets import Dataset, Features, Image, List, Value


def jpeg_bytes(width: int, height: int, colour=(200, 30, 30)) -> bytes:
    from PIL import Image as PILImage

    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def write_image(path, width: int, height: int) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(jpeg_bytes(width, height))
    return str(path)


def coco_name(image_id: int) -> str:
    return f"COCO_train2014_{image_id:012d}.jpg"


def write_coco_images(folder, sizes: dict[int, tuple[int, int]]) -> Path:
    """COCO train2014 file names in one flat folder: {image_id: (width, height)}."""
    for image_id, size in sizes.items():
        write_image(Path(folder) / coco_name(image_id), *size)
    return Path(folder)


def write_parquet_repo(root, splits: dict[str, dict], features: Features) -> str:
    """A local folder laid out like a Hub parquet repo: data/<split>-00000-of-00001.parquet."""
    os.makedirs(os.path.join(root, "data"), exist_ok=True)
    for split, columns in splits.items():
        Dataset.from_dict(columns, features=features).to_parquet(
            os.path.join(root, "data", f"{split}-00000-of-00001.parquet")
        )
    return str(root)


# ----------------------------------------------------------------------------------------------- lmms-lab/RefCOCO*

LMMS_FEATURES = Features(
    {
        "question_id": Value("string"),
        "image": Image(),
        "question": Value("string"),
        "answer": List(Value("string")),
        "segmentation": List(Value("float32")),
        "bbox": List(Value("float32")),
        "iscrowd": Value("int8"),
        "file_name": Value("string"),
    }
)


def lmms_split(refs):
    """refs: (ann_id, image_id, (w, h), answers, xywh)."""
    return {
        "question_id": [str(ann) for ann, *_ in refs],
        "image": [{"bytes": jpeg_bytes(*size), "path": None} for _, _, size, _, _ in refs],
        "question": ["Please provide the bounding box coordinate of the region this sentence describes: "] * len(refs),
        "answer": [answers for *_, answers, _ in refs],
        "segmentation": [[0.0, 0.0, 1.0, 1.0, 2.0, 0.0]] * len(refs),
        "bbox": [box for *_, box in refs],
        "iscrowd": [0] * len(refs),
        "file_name": [f"COCO_train2014_{image:012d}_{ann}.jpg" for ann, image, *_ in refs],
    }


def write_lmms_repo(root) -> str:
    """lmms-lab/RefCOCO's layout: val, test, testA and testB (no train split), images embedded."""
    return write_parquet_repo(
        root,
        {
            "testA": lmms_split([(11, 1, (40, 30), ["man left", "guy on left"], [2.5, 3.0, 10.0, 20.0])]),
            "testB": lmms_split([(12, 2, (32, 32), ["red car"], [0.0, 0.0, 32.0, 16.0])]),
            "val": lmms_split([(13, 3, (20, 20), ["dog"], [1.0, 1.0, 5.0, 5.0])]),
            "test": lmms_split([(14, 3, (20, 20), ["cat"], [1.0, 1.0, 5.0, 5.0])]),
        },
        LMMS_FEATURES,
    )


# ------------------------------------------------------------------------------------------------ jxu124/refcoco*

SENTENCE = {
    "raw": Value("string"),
    "sent": Value("string"),
    "sent_id": Value("int64"),
    "tokens": List(Value("string")),
}
JXU124_FEATURES = Features(
    {
        "ref_id": Value("int64"),
        "ann_id": Value("int64"),
        "image_id": Value("int64"),
        "category_id": Value("int64"),
        "split": Value("string"),
        "file_name": Value("string"),
        "sent_ids": List(Value("int64")),
        "sentences": List(SENTENCE),
        "captions": List(Value("string")),
        "bbox": List(Value("float64")),
        "raw_anns": Value("string"),
        "raw_image_info": Value("string"),
        "raw_sentences": Value("string"),
        "image_path": Value("string"),
        "global_image_id": Value("string"),
    }
)
# the COCO images the jxu124 fixture refers to: {image_id: (width, height)}
JXU124_IMAGES = {1: (40, 30), 2: (32, 32), 3: (20, 20)}


def jxu124_split(refs, split_value):
    """refs: (ref_id, ann_id, image_id, (w, h), [sentences], xyxy)."""
    columns = {name: [] for name in JXU124_FEATURES}
    for ref_id, ann_id, image_id, (w, h), sentences, box in refs:
        sents = [
            {"raw": s.upper(), "sent": s, "sent_id": 100 * ref_id + i, "tokens": s.split()}
            for i, s in enumerate(sentences)
        ]
        xywh = [box[0], box[1], box[2] - box[0], box[3] - box[1]]
        values = {
            "ref_id": ref_id,
            "ann_id": ann_id,
            "image_id": image_id,
            "category_id": 1,
            "split": split_value,
            "file_name": f"COCO_train2014_{image_id:012d}_{ann_id}.jpg",
            "sent_ids": [s["sent_id"] for s in sents],
            "sentences": sents,
            "captions": list(sentences),
            "bbox": box,
            "raw_anns": repr({"id": ann_id, "image_id": image_id, "bbox": xywh, "category_id": 1}),
            "raw_image_info": json.dumps({"file_name": coco_name(image_id), "height": h, "width": w, "id": image_id}),
            "raw_sentences": repr(sents),
            "image_path": f"coco/train2014/{coco_name(image_id)}",
            "global_image_id": f"coco.{image_id}",
        }
        for name, value in values.items():
            columns[name].append(value)
    return columns


def write_jxu124_repo(root) -> str:
    """jxu124/refcoco's layout: train, validation (val), test (testA) and testB; images in `JXU124_IMAGES`."""
    return write_parquet_repo(
        root,
        {
            "train": jxu124_split([(1, 11, 1, (40, 30), ["left man", "man"], [2.0, 3.0, 12.5, 23.0])], "train"),
            "validation": jxu124_split([(2, 12, 2, (32, 32), ["car"], [0.0, 0.0, 32.0, 16.0])], "val"),
            "test": jxu124_split(
                [
                    (3, 13, 3, (20, 20), ["a", "b", "c"], [1.0, 1.0, 6.0, 6.0]),
                    (4, 14, 1, (40, 30), ["d"], [0.0, 0.0, 4.0, 4.0]),
                ],
                "testA",
            ),
            "testB": jxu124_split([(5, 15, 2, (32, 32), ["e"], [4.0, 4.0, 8.0, 8.0])], "testB"),
        },
        JXU124_FEATURES,
    )


def make_jxu124(tmp_path):
    """The jxu124 repo and a COCO root holding `coco/train2014/` (the layout of jxu124's `image_path`)."""
    coco = tmp_path / "images"
    write_coco_images(coco / "coco" / "train2014", JXU124_IMAGES)
    return write_jxu124_repo(tmp_path / "refcoco"), coco


# --------------------------------------------------------------------------------------- REFER toolkit pickles + json

# the COCO images the REFER fixture refers to
REFER_IMAGES = {1: (40, 30), 2: (32, 32)}


def write_refer_folder(folder, refs_protocol=2, extra=None, with_val: bool = False) -> Path:
    """A REFER folder (`refs(unc).p` + `instances.json`) over `REFER_IMAGES`; `with_val`: a val ref too."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sentence = lambda i, s: {"tokens": s.split(), "raw": s.title(), "sent_id": i, "sent": s}  # noqa: E731
    refs = [
        {
            "ref_id": 1,
            "ann_id": 11,
            "image_id": 1,
            "category_id": 1,
            "split": "train",
            "file_name": "x_11.jpg",
            "sent_ids": [1, 2],
            "sentences": [sentence(1, "left man"), sentence(2, "man")],
        },
        {
            "ref_id": 2,
            "ann_id": 12,
            "image_id": 2,
            "category_id": 3,
            "split": "testA",
            "file_name": "x_12.jpg",
            "sent_ids": [3],
            "sentences": [sentence(3, "car")],
        },
        {
            "ref_id": 3,
            "ann_id": 13,
            "image_id": 2,
            "category_id": 3,
            "split": "testB",
            "file_name": "x_13.jpg",
            "sent_ids": [4],
            "sentences": [sentence(4, "bike")],
        },
    ]
    if with_val:
        refs.append(dict(refs[1], ref_id=4, split="val", sent_ids=[5], sentences=[sentence(5, "the car")]))
    if extra is not None:
        refs[0]["extra"] = extra
    with open(folder / "refs(unc).p", "wb") as f:
        pickle.dump(refs, f, protocol=refs_protocol)
    instances = {
        "images": [
            {"id": image_id, "file_name": coco_name(image_id), "width": width, "height": height}
            for image_id, (width, height) in REFER_IMAGES.items()
        ],
        "annotations": [
            {"id": 11, "image_id": 1, "category_id": 1, "bbox": [2.5, 3.0, 10.0, 20.0], "area": 200.0, "iscrowd": 0},
            {"id": 12, "image_id": 2, "category_id": 3, "bbox": [0.0, 0.0, 32.0, 16.0], "area": 512.0, "iscrowd": 0},
            {"id": 13, "image_id": 2, "category_id": 3, "bbox": [4.0, 4.0, 4.0, 4.0], "area": 16.0, "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "person"}, {"id": 3, "name": "car"}],
    }
    (folder / "instances.json").write_text(json.dumps(instances))
    return folder


def make_refer(tmp_path, refs_protocol=2, extra=None):
    """A REFER folder `refer/refcoco` and the flat COCO folder `train2014` of its images."""
    folder = write_refer_folder(tmp_path / "refer" / "refcoco", refs_protocol, extra)
    return folder, write_coco_images(tmp_path / "train2014", REFER_IMAGES)


# ---------------------------------------------------------------------------------------------- TransVG .pth files

# where TransVG's data root keeps the COCO images of unc / unc+ / gref
TRANSVG_COCO_FOLDER = "other/images/mscoco/images/train2014"


def write_transvg_unc(folder, data_root) -> Path:
    """TransVG's `unc_train.pth` / `unc_val.pth` in `folder`, their image under `data_root` as TransVG keeps it."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_image(Path(data_root) / TRANSVG_COCO_FOLDER / coco_name(1), 40, 30)
    attri = [("r1", ["man"]), ("r2", ["none"]), ("r3", ["none"]), ("r4", ["left"])] + [
        (f"r{i}", ["none"]) for i in range(5, 9)
    ]
    torch.save(
        [
            (coco_name(1), "11.pth", [2.7, 3.2, 10.6, 20.9], "left man", attri),
            (coco_name(1), "11.pth", [2.7, 3.2, 10.6, 20.9], "man", attri),
        ],
        folder / "unc_train.pth",
    )
    torch.save([(coco_name(1), "12.pth", [0.0, 0.0, 8.0, 8.0], "thing", attri)], folder / "unc_val.pth")
    return folder


# ------------------------------------------------------------------------------------------- Flickr30k Entities raw

FLICKR_XML = """<annotation>
  <filename>1000.jpg</filename>
  <size><width>50</width><height>40</height><depth>3</depth></size>
  <object><name>18</name><bndbox><xmin>1</xmin><ymin>2</ymin><xmax>10</xmax><ymax>20</ymax></bndbox></object>
  <object><name>18</name><bndbox><xmin>21</xmin><ymin>5</ymin><xmax>30</xmax><ymax>25</ymax></bndbox></object>
  <object><name>19</name><name>20</name><bndbox><xmin>31</xmin><ymin>1</ymin><xmax>50</xmax><ymax>40</ymax></bndbox></object>
  <object><name>21</name><nobndbox>1</nobndbox><scene>1</scene></object>
</annotation>"""
FLICKR_SENTENCES = (
    "[/EN#18/people Two children] play near [/EN#19/other a wall] in [/EN#21/scene the park] .\n"
    "[/EN#18/people Kids] and [/EN#0/notvisual someone] by [/EN#20/other/bodyparts the brick wall] .\n"
)


def write_flickr30k_entities(root, images, splits=("test",)) -> Path:
    """Flickr30k Entities' `Annotations/`, `Sentences/` and split lists (image 1000 in each), its image in `images`."""
    root = Path(root)
    (root / "Annotations").mkdir(parents=True, exist_ok=True)
    (root / "Sentences").mkdir(exist_ok=True)
    (root / "Annotations" / "1000.xml").write_text(FLICKR_XML)
    (root / "Sentences" / "1000.txt").write_text(FLICKR_SENTENCES)
    for split in splits:
        (root / f"{split}.txt").write_text("1000\n")
    write_image(Path(images) / "1000.jpg", 50, 40)
    return root
