"""Copy the per-topic result sections (``bench/sections/*.md``) into ``bench/RESULTS.md``.

Each section lands between ``<!-- section:NAME:start -->`` and ``<!-- section:NAME:end -->`` markers
(replaced in place if present, appended otherwise), so re-running a benchmark and this script updates
RESULTS.md without touching the other sections. ``NAME.notes.md`` files are appended to ``NAME`` unless it already holds them.

    python bench/merge_sections.py
"""

from __future__ import annotations

import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = ["crossmodal", "service", "text", "text_sparse", "blocking", "funchash_selection", "quantize", "recsys",
         "blocking_neural", "hashing_supervised", "hashing_supervised_triplet", "nn", "discover", "text_adapt",
         "represent", "robust", "crossmodal_supervised", "discover_noise"]


def section_text(name: str) -> str:
    parts = [(HERE / "sections" / f"{name}.md").read_text().strip()]
    notes = HERE / "sections" / f"{name}.notes.md"
    if notes.is_file() and notes.read_text().strip() not in parts[0]:  # some generators embed their notes
        parts.append(notes.read_text().strip())
    return "\n\n".join(parts)


def merge(results: str, name: str, body: str) -> str:
    start, end = f"<!-- section:{name}:start -->", f"<!-- section:{name}:end -->"
    block = f"{start}\n{body}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(results):
        return pattern.sub(lambda _: block, results)
    return results.rstrip() + "\n\n" + block + "\n"


def main() -> None:
    path = HERE / "RESULTS.md"
    results = path.read_text()
    names = [n for n in ORDER if (HERE / "sections" / f"{n}.md").is_file()]
    names += sorted(p.stem for p in (HERE / "sections").glob("*.md")
                    if not p.stem.endswith(".notes") and p.stem not in names)
    for name in names:
        results = merge(results, name, section_text(name))
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(results)
    tmp.replace(path)
    print(f"merged {len(names)} sections into {path}: {', '.join(names)}")


if __name__ == "__main__":
    main()
