"""Document functions of the vtr_testbed_* tasks: the question as `vtr eval` asks it, the image
`vtr eval` shows (read through vtr's own split loader), exact-match accuracy as `vtr eval` scores it."""
from vtr.integrations.lmms.model import testbed_image


def doc_to_text(doc: dict, lmms_eval_specific_kwargs: dict | None = None) -> str:
    return doc["question"]


def doc_to_visual_val(doc: dict) -> list:
    return [testbed_image("val", doc)]


def doc_to_visual_test(doc: dict) -> list:
    return [testbed_image("test", doc)]


def process_results(doc: dict, results: list[str]) -> dict:
    return {"accuracy": float(results[0] == doc["answer"])}
