"""Small files in each benchmark's official format, written offline: the tests' fixtures and the
benchmark folders of the tiny profile (`vtr.experiments.tiny`).

Each writer returns what the benchmark's reader takes as its first argument. Images are 8x8 solid
squares made with PIL, so a test can check the colour to know the right image was loaded. The
question texts and answers follow each benchmark's own (invented questions, real formats).
"""
from __future__ import annotations

import base64
import csv
import io
import json
from pathlib import Path

from PIL import Image

SIZE = (8, 8)
RED, GREEN, BLUE, GREY = (255, 0, 0), (0, 255, 0), (0, 0, 255), (128, 128, 128)


def save_image(path: Path, color=RED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", SIZE, color).save(path)
    return path


def write_json(path: Path, obj) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))
    return path


def write_gqa(root: Path) -> Path:
    """3 questions on 2 images: answers yes / table / left; structural types verify / query / choose."""
    questions = {
        "201307251": {"imageId": "n161313", "question": "Is it overcast?", "answer": "yes",
                      "fullAnswer": "Yes, it is overcast.", "isBalanced": True,
                      "types": {"structural": "verify", "semantic": "global", "detailed": "weatherVerify"}},
        "201640614": {"imageId": "n161313", "question": "What is the cup on?", "answer": "table",
                      "fullAnswer": "The cup is on the table.", "isBalanced": True,
                      "types": {"structural": "query", "semantic": "rel", "detailed": "relS"}},
        "20968379": {"imageId": "n235859", "question": "Is the dog to the left or right?",
                     "answer": "left", "fullAnswer": "The dog is to the left.", "isBalanced": True,
                     "types": {"structural": "choose", "semantic": "rel", "detailed": "positionChoose"}},
    }
    write_json(root / "testdev_balanced_questions.json", questions)
    save_image(root / "images" / "n161313.jpg", RED)
    save_image(root / "images" / "n235859.jpg", GREEN)
    return root


POPE_ROWS = [  # (image, object, label); the same 6 questions in every split file
    ("COCO_val2014_000000310196.jpg", "snowboard", "yes"),
    ("COCO_val2014_000000310196.jpg", "person", "yes"),
    ("COCO_val2014_000000210789.jpg", "dog", "yes"),
    ("COCO_val2014_000000210789.jpg", "car", "no"),
    ("COCO_val2014_000000310196.jpg", "bus", "no"),
    ("COCO_val2014_000000210789.jpg", "cake", "no"),
]


def write_pope(root: Path, repeat: int = 1, first_id: int = 1) -> Path:
    """`coco_pope_{random,popular,adversarial}.json` (6 JSON lines each, `repeat` times that with
    question ids from `first_id` on) + `val2014/` images."""
    rows = POPE_ROWS * repeat
    for split in ("random", "popular", "adversarial"):
        lines = [json.dumps({"question_id": first_id + i, "image": img,
                             "text": f"Is there a {obj} in the image?", "label": label})
                 for i, (img, obj, label) in enumerate(rows)]
        (root / f"coco_pope_{split}.json").write_text("\n".join(lines) + "\n")
    save_image(root / "val2014" / "COCO_val2014_000000310196.jpg", RED)
    save_image(root / "val2014" / "COCO_val2014_000000210789.jpg", GREEN)
    return root


MME_NESTED = ("artwork", "celebrity", "landmark", "posters", "scene")


def write_mme(root: Path) -> Path:
    """All 14 subtasks, one image each (two questions: Yes then No); `existence` has a second
    image. The five nested subtasks use images/ + questions_answers_YN/, the rest flat pairs."""
    from vtr.benchmarks.mme import SUBTASKS
    for task in SUBTASKS:
        stems = ["000000006040", "000000012345"] if task == "existence" else ["0001"]
        for stem in stems:
            qa = (f"Is there a {task} clue in this image? Please answer yes or no.\tYes\n"
                  f"Is there a unicorn in this image? Please answer yes or no.\tNo\n")
            if task in MME_NESTED:
                save_image(root / task / "images" / f"{stem}.jpg", BLUE)
                txt = root / task / "questions_answers_YN" / f"{stem}.txt"
            else:
                save_image(root / task / f"{stem}.png", BLUE)
                txt = root / task / f"{stem}.txt"
            txt.parent.mkdir(parents=True, exist_ok=True)
            txt.write_text(qa)
    return root


def write_textvqa(root: Path) -> Path:
    """2 questions; 10 answers each; Rosetta OCR file `TextVQA_Rosetta_OCR_v0.2_val.json`."""
    data = [
        {"question_id": 34602, "image_id": "0054c91397f2fe05", "question": "what is the brand of this drink?",
         "answers": ["coca cola"] * 2 + ["coke"] * 8, "image_classes": ["Bottle"], "set_name": "val"},
        {"question_id": 34603, "image_id": "005635e119b9f32f", "question": "what does the sign say?",
         "answers": ["stop"] * 10, "image_classes": ["Sign"], "set_name": "val"},
    ]
    write_json(root / "TextVQA_0.5.1_val.json", {"dataset_name": "textvqa", "dataset_version": "0.5.1",
                                                 "data": data})
    write_json(root / "TextVQA_Rosetta_OCR_v0.2_val.json",
               {"data": [{"image_id": "0054c91397f2fe05", "ocr_tokens": ["coca", "cola", "classic"]},
                         {"image_id": "005635e119b9f32f", "ocr_tokens": []}]})
    save_image(root / "train_images" / "0054c91397f2fe05.jpg", RED)
    save_image(root / "train_images" / "005635e119b9f32f.jpg", GREEN)
    return root


def write_scienceqa(root: Path) -> Path:
    """5 problems: test 1, 2, 5 have images; test 3 has none; 4 is train. Answers: B, A, C."""
    def problem(question, choices, answer, hint, image, split, subject="natural science"):
        return {"question": question, "choices": choices, "answer": answer, "hint": hint,
                "image": image, "task": "closed choice", "grade": "grade3", "subject": subject,
                "topic": "geography", "category": "Geography", "skill": "Read a map",
                "lecture": "", "solution": "", "split": split}
    problems = {
        "1": problem("Which of these states is farthest north?", ["Arizona", "Maine", "Texas"], 1,
                     "", "image.png", "test", "social science"),
        "2": problem("Which animal's feet are also adapted for swimming?", ["duck", "cat"], 0,
                     "Ducks live near water.", "image.png", "test"),
        "3": problem("What is 2 + 2?", ["3", "4"], 1, "", None, "test"),
        "4": problem("Which is a mammal?", ["whale", "shark"], 0, "", "image.png", "train"),
        "5": problem("Which material is this?", ["wood", "glass", "rubber", "metal"], 2,
                     "", "image.png", "test"),
    }
    write_json(root / "problems.json", problems)
    write_json(root / "pid_splits.json", {"train": ["4"], "val": [], "test": ["1", "2", "3", "5"]})
    for pid, color in (("1", RED), ("2", GREEN), ("5", BLUE)):
        save_image(root / "test" / pid / "image.png", color)
    save_image(root / "train" / "4" / "image.png", GREY)
    return root


def b64_image(color, fmt="PNG") -> str:
    buf = io.BytesIO()
    Image.new("RGB", SIZE, color).save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode()


MMBENCH_COLUMNS = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "image",
                   "source", "l2-category", "comment", "split"]


def write_mmbench(root: Path) -> Path:
    """`mmbench_dev_20230712.tsv`: question 0 (4 options, answer B, hint, PNG), question 1
    (2 options, answer A, no hint, JPEG), question 2 (3 options, answer C, image = reference "1")."""
    rows = [
        [0, "What is the main color of the image?", "Look at the picture.", "green", "red", "blue",
         "yellow", "B", "color_recognition", b64_image(RED), "synthetic", "FP-S", "", "dev"],
        [1, "Is the square filled?", "", "yes", "no", "", "", "A", "attribute_recognition",
         b64_image(GREEN, "JPEG"), "synthetic", "FP-S", "", "dev"],
        [2, "Which shape is shown?", "", "circle", "triangle", "square", "", "C", "shape",
         "1", "synthetic", "FP-S", "", "dev"],
    ]
    path = root / "mmbench_dev_20230712.tsv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t")
        w.writerow(MMBENCH_COLUMNS)
        w.writerows(rows)
    return path


def write_vqav2(root: Path) -> Path:
    """val2014 questions + annotations: 3 questions (yes/no, number, other) on 2 COCO images."""
    questions = [{"image_id": 262148, "question": "Is the sky blue?", "question_id": 262148000},
                 {"image_id": 262148, "question": "How many people are there?", "question_id": 262148001},
                 {"image_id": 393225, "question": "What color is the bowl?", "question_id": 393225000}]
    answers = {262148000: ["yes"] * 10,
               262148001: ["2"] * 3 + ["3"] * 7,
               393225000: ["red"] + ["orange"] * 9}
    types = {262148000: "yes/no", 262148001: "number", 393225000: "other"}
    annotations = [{"question_id": q["question_id"], "image_id": q["image_id"],
                    "answer_type": types[q["question_id"]], "question_type": "what",
                    "multiple_choice_answer": answers[q["question_id"]][-1],
                    "answers": [{"answer": a, "answer_confidence": "yes", "answer_id": i + 1}
                                for i, a in enumerate(answers[q["question_id"]])]}
                   for q in questions]
    write_json(root / "v2_OpenEnded_mscoco_val2014_questions.json",
               {"info": {}, "task_type": "Open-Ended", "data_type": "mscoco",
                "data_subtype": "val2014", "license": {}, "questions": questions})
    write_json(root / "v2_mscoco_val2014_annotations.json",
               {"info": {}, "data_type": "mscoco", "data_subtype": "val2014", "license": {},
                "annotations": annotations})
    save_image(root / "val2014" / "COCO_val2014_000000262148.jpg", RED)
    save_image(root / "val2014" / "COCO_val2014_000000393225.jpg", GREEN)
    return root


