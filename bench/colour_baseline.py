"""A floor for the quality benchmark: how far do colour statistics alone get on unseen patients?

Each image becomes 12 numbers (mean and standard deviation of its R, G, B and H, S, V channels); a
logistic regression is cross-validated on the same patient-grouped folds as `bcc-quality`
(`patient_kfold`, seed 42). If a deep model scores below this on unseen patients, it has learned the
training patients rather than the tissue.

    python bench/colour_baseline.py ../shared/data/breakhis-dev --folds 5
"""
import argparse, json

import numpy as np
from PIL import Image
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bcc_nb.data import breakhis_manifest, patient_kfold


def colour_features(path) -> np.ndarray:
    "Mean and standard deviation of each RGB and HSV channel, in [0, 1]."
    im = Image.open(path).convert('RGB')
    x = np.concatenate([np.asarray(im), np.asarray(im.convert('HSV'))], axis=-1).reshape(-1, 6) / 255.
    return np.concatenate([x.mean(0), x.std(0)])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('data'); p.add_argument('--folds', type=int, default=5); p.add_argument('--seed', type=int, default=42)
    a = p.parse_args()
    df = breakhis_manifest(a.data).reset_index(drop=True)
    X = np.stack([colour_features(f) for f in df.path])
    y = (df.label == 'malignant').values.astype(int)
    oof, fold_auc = np.zeros(len(df)), []
    for tr, va in patient_kfold(df, a.folds, a.seed):
        m = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(X[tr], y[tr])
        oof[va] = m.predict_proba(X[va])[:, 1]
        fold_auc.append(round(roc_auc_score(y[va], oof[va]), 3))
    res = dict(images=len(df), patients=int(df.case.nunique()), folds=a.folds,
               pooled_roc_auc=round(roc_auc_score(y, oof), 3), accuracy=round(float(((oof >= 0.5) == y).mean()), 3),
               fold_roc_auc=fold_auc)
    print(json.dumps(res))


if __name__ == '__main__': main()
