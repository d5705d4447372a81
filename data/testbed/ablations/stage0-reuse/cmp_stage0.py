# Compare the stage-0 lines of a training log with the shipped log (python cmp_stage0.py <log>, from the repository root).
import json, sys
a = [json.loads(l) for l in open(sys.argv[1]) if '"stage": 0' in l]
b = [json.loads(l) for l in open("data/testbed/model/training_log.jsonl") if '"stage": 0' in l]
for x, y in zip(a, b):
    print(x["step"], x["loss"] == y["loss"], x["fg_patch_acc"] == y["fg_patch_acc"])
