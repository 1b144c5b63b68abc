"""Where a benchmark's rows come from: a JSONL / JSON / parquet file, a file shipped inside the package, or the
Hugging Face hub through the `datasets` library (cached the way `datasets` caches). Every failure is a DataError
that names the file or the dataset and the other way to get the rows."""
from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from tts.kernel.errors import DataError
from tts.kit.hub import hub_reachable

Rows = list[tuple[int, dict]]  # (row number, from 1; the row)


def read_jsonl(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line; a clear DataError for a missing file or a bad line."""
    if not path.exists():
        raise DataError(f"data file not found: {path}")
    if path.is_dir():
        raise DataError(f"data path is a directory, not a JSONL file: {path}")
    rows = []
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise DataError(f"{path}:{number}: not UTF-8 text (is this a JSONL file?)") from None
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{number}: not valid JSON ({e.msg})") from None
            except (RecursionError, ValueError) as e:  # nesting too deep; a number too long to convert
                raise DataError(f"{path}:{number}: unreadable JSON ({type(e).__name__}: {str(e)[:80]})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
            rows.append((number, obj))
    if not rows:
        raise DataError(f"data file has no problems: {path}")
    return rows


def read_rows(path: Path) -> Rows:
    """Rows of a data file, by its suffix: .jsonl (one object a line), .json (a list of objects, or an object
    holding one), .parquet (the hub's own format)."""
    path = Path(path)
    if path.exists() and not path.is_file():  # a device, FIFO or folder would hang or fill memory when read
        kind = "a folder" if path.is_dir() else "not a regular file (a device, FIFO or socket)"
        raise DataError(f"data file {path} is {kind}")
    suffix = path.suffix.lower()
    if suffix == ".json":
        return _read_json(path)
    if suffix == ".parquet":
        return _read_parquet(path)
    return read_jsonl(path)


def _read_json(path: Path) -> Rows:
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError, ValueError) as e:
        raise DataError(f"{path}: not valid JSON ({str(e)[:80]})") from None
    if isinstance(doc, dict):  # {"data": [...]} / {"test": [...]}: one list inside an object
        lists = [v for v in doc.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(f"{path}: expected a list of objects (or an object holding exactly one list)")
        doc = lists[0]
    if not isinstance(doc, list) or not doc:
        raise DataError(f"{path}: expected a non-empty list of objects")
    bad = next((i for i, row in enumerate(doc, 1) if not isinstance(row, dict)), None)
    if bad is not None:
        raise DataError(f"{path}: item {bad} is not an object")
    return list(enumerate(doc, 1))


def _read_parquet(path: Path) -> Rows:
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading parquet needs pyarrow (pip install 'tts-orchestrator[data]')") from None
    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises its own ArrowInvalid / OSError family for a damaged file
        raise DataError(f"{path}: not a readable parquet file ({type(e).__name__}: {str(e)[:80]})") from None
    rows = table.to_pylist()
    if not rows:
        raise DataError(f"data file has no problems: {path}")
    return list(enumerate(rows, 1))


def packaged(name: str) -> Rows:
    ref = resources.files("tts.tasks") / "data" / name
    with resources.as_file(ref) as p:
        return read_jsonl(Path(p))


def from_hub(dataset: str, config: str | None, split: str, set_name: str) -> Rows:
    """Rows of a hub dataset through `datasets` (its cache first); unreachable is one DataError naming both ways."""
    import os

    hint = ("pass --data FILE (JSONL, JSON or parquet with the hub's fields) or run where the Hugging Face hub is "
            "reachable")
    online = hub_reachable()
    if not online:  # the cache may still hold it: ask `datasets` for the cached copy only, without retries
        os.environ["HF_HUB_OFFLINE"] = os.environ["HF_DATASETS_OFFLINE"] = "1"
    try:
        import datasets
        import huggingface_hub
    except ImportError:
        raise DataError(f"task '{set_name}' loads {dataset} from the Hugging Face hub, which needs the `datasets` "
                        f"library (pip install 'tts-orchestrator[data]'); or {hint}") from None
    if not online:  # imported earlier in this process: its constants were read before the variable was set
        huggingface_hub.constants.HF_HUB_OFFLINE = True
        datasets.config.HF_HUB_OFFLINE = True
    datasets.logging.set_verbosity_error()
    huggingface_hub.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    try:
        ds = datasets.load_dataset(dataset, config, split=split)
    except Exception as e:  # offline, unknown id, gated: `datasets` raises many types; all mean "not here"
        reason = "the hub is unreachable and the dataset is not in the local cache" if not online else (
            str(e).splitlines()[0][:160] if str(e) else type(e).__name__)
        raise DataError(f"task '{set_name}': could not load {dataset} ({split}) from the Hugging Face hub "
                        f"({reason}); {hint}") from None
    return list(enumerate((dict(row) for row in ds), 1))
