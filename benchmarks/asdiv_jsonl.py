"""ASDiv's original file (dataset/ASDiv.xml in github.com/chaochun/nlu-asdiv-dataset, 2,305 problems) as JSON lines
with the columns the hub's copies use (body, question, answer, solution_type, formula, grade), so that README's
ASDiv commands run on it: `tts eval --task numeric --data asdiv.jsonl --field question='{body} {question}'
--skip-unreadable-golds`. The data is CC BY-NC 4.0: it is not shipped with tts.

Usage: python benchmarks/asdiv_jsonl.py ASDiv.xml asdiv.jsonl
"""
from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET  # the file is the dataset's own, not input from a stranger


def main(src: str, dst: str) -> None:
    rows = []
    for p in ET.parse(src).getroot().iter("Problem"):
        text = lambda tag: (p.findtext(tag) or "").strip()  # noqa: E731
        rows.append({"id": p.get("ID"), "body": text("Body"), "question": text("Question"),
                     "answer": text("Answer"), "solution_type": text("Solution-Type"), "formula": text("Formula"),
                     "grade": p.get("Grade")})
    with open(dst, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    print(f"{len(rows)} problems -> {dst}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
