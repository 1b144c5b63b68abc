"""Does a learned combination of the free pruning signals predict "these two partial traces end alike" better? (issue 6)

DeepPrune gets AUROC 0.87 from a trained judge where plain embeddings give 0.58. Training a language-model judge is out
of reach on this CPU, but the cheap signals tts already computes can be combined by a logistic regression: prefix
cosine, last-step cosine, intermediate-numbers Jaccard, the share of the trace seen, and the two prefixes' length
ratio. Trained on the pairs of one model's SC runs and scored on the other model's (so the figure is out of sample,
across models and tasks), against each signal alone on the same test pairs.
Writes results/bench/prune_judge.json. Needs no engine, only the embedding model and scikit-learn (sentence-transformers
brings it).
Usage (from benchmarks/): python prune_judge.py --a gsm8k RUN DATA --a svamp RUN DATA --b gsm8k RUN DATA --b svamp RUN DATA
"""
from __future__ import annotations

import argparse

import numpy as np
from common import write
from prune_cpu import auroc
from prune_replay import Embeddings, load, pair_signals
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

FRACTIONS = (0.25, 0.5, 0.75)
FEATURES = ("prefix", "step", "numbers", "seen", "length_ratio")


def pairs(problems, emb: Embeddings, frac: float) -> tuple[np.ndarray, np.ndarray]:
    rows, labels = [], []
    for p in problems:
        for signals, same in pair_signals(p, emb, frac):
            rows.append([signals["prefix"], signals["step"], signals["numbers"], frac, signals["length_ratio"]])
            labels.append(same)
    return np.array(rows), np.array(labels)


def dataset(specs, emb: Embeddings) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    problems = [p for spec in specs for p in load(*spec)]
    return {f: pairs(problems, emb, f) for f in FRACTIONS}


def main(args) -> None:
    emb = Embeddings()
    sets = {"a": dataset(args.a, emb), "b": dataset(args.b, emb)}
    figures: dict = {"a": args.a, "b": args.b, "features": FEATURES}
    for train, test in (("a", "b"), ("b", "a")):
        # one judge for every checkpoint: the share of the trace seen is one of its inputs
        x = np.vstack([sets[train][f][0] for f in FRACTIONS])
        y = np.concatenate([sets[train][f][1] for f in FRACTIONS])
        scaler = StandardScaler().fit(x)
        judge = LogisticRegression(max_iter=1000).fit(scaler.transform(x), y)
        out = {"train_pairs": int(len(y)), "train_same_answer_share": round(float(y.mean()), 4),
               "coefficients": dict(zip(FEATURES, np.round(judge.coef_[0], 3).tolist()))}
        for f in FRACTIONS:
            xt, yt = sets[test][f]
            judged = judge.predict_proba(scaler.transform(xt))[:, 1]
            labels = yt.tolist()
            out[f"{int(f * 100)}%"] = {"judge": auroc(judged.tolist(), labels),
                                       **{name: auroc(xt[:, k].tolist(), labels)
                                          for k, name in enumerate(FEATURES[:3])},
                                       "pairs": len(labels), "same_answer_share": round(float(yt.mean()), 4)}
        figures[f"train_{train}_test_{test}"] = out
        print(out, flush=True)
    figures["reference"] = "DeepPrune: trained judge 0.87, plain sentence embeddings 0.58"
    print(write("prune_judge", figures))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--a", nargs=3, action="append", required=True, metavar=("TASK", "ROWS", "DATA"))
    ap.add_argument("--b", nargs=3, action="append", required=True, metavar=("TASK", "ROWS", "DATA"))
    main(ap.parse_args())
