"""Does test-time augmentation help on unseen patients? Re-score a cross-validation's folds with and without it.

Each fold's model (`bcc-quality` / `bcc-cv` run folders) scores the images it never saw, once as `bcc-predict`
does and once averaged over the 8 dihedral views (`bcc-predict --tta`); the pooled out-of-fold ROC-AUC and the
per-fold AUCs of both are printed. The plain pass must reproduce the fold's own predictions.csv (checked).

    python bench/tta_cv.py bench/quality/default
"""
import argparse, json
from pathlib import Path

import numpy as np, pandas as pd, torch
from sklearn.metrics import roc_auc_score

from bcc_nb.predict import load_classifier


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('cv', help='a cross-validation folder with fold0, fold1, ... run folders')
    p.add_argument('--threads', type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    folds = sorted(Path(a.cv).glob('fold[0-9]*'), key=lambda f: int(f.name[4:]))
    if not folds: raise SystemExit(f"{a.cv}: no fold0, fold1, ... folders. Run bcc-quality or bcc-cv first.")
    res, rows = {}, []
    for i, f in enumerate(folds):
        held = pd.read_csv(f/'predictions.csv').query("split == 'valid'")
        clf = load_classifier(f, device='cpu')
        for tta in (False, True):
            d = clf.predict(list(held.path), tta=tta, bs=64)
            if not tta: assert np.allclose(d.prob_malignant, held.prob_malignant, atol=1e-4), f"{f}: the plain pass does not reproduce predictions.csv"
            rows.append(pd.DataFrame(dict(fold=i, tta=tta, y=(held.label == 'malignant').values.astype(int), prob=d.prob_malignant.values)))
    df = pd.concat(rows)
    for tta, d in df.groupby('tta'):
        res['tta' if tta else 'plain'] = dict(pooled_roc_auc=round(roc_auc_score(d.y, d.prob), 3),
                                             accuracy=round(float(((d.prob >= .5) == d.y).mean()), 3),
                                             fold_roc_auc=[round(roc_auc_score(g.y, g.prob), 3) for _, g in d.groupby('fold')])
    print(json.dumps(dict(cv=str(a.cv), **res)))


if __name__ == '__main__': main()
