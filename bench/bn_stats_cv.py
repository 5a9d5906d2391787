"""Are the batch-norm statistics the problem? Re-score a cross-validation's folds with re-estimated statistics.

A model's batch-norm layers normalise with running statistics gathered during training: from augmented
patches (zoom, colour jitter), in batches of 16, and, with the weight average, averaged over changing
weights. Each fold's model (`bcc-quality` / `bcc-cv` run folders) scores the images it never saw four ways:

- `plain`: as saved (as `bcc-predict` does; must reproduce the fold's predictions.csv, checked);
- `train`: every batch-norm layer's statistics re-estimated with the final weights over the fold's own
  training images, as they are seen at test time (the patch grid, no augmentation; "precise BN");
- `head`: only the head's batch norm re-estimated so (it follows Dropout 0.5, which is off at test time but
  was on when training gathered its statistics);
- `target`: re-estimated over the held-out images themselves (AdaBN: uses the new patients' images, not
  their labels; what a user could do with an unlabelled cohort from another lab).

Prints the pooled out-of-fold ROC-AUC, accuracy at 0.5 and per-fold AUCs of each, and with `--out` writes
`predictions.csv` files (one per way, the columns of the folds' own) that `bench/paired_auc.py` compares.

    python bench/bn_stats_cv.py bench/quality/arch_resnet18 --out /tmp/bn_resnet18
"""
import argparse, json
from pathlib import Path

import numpy as np, pandas as pd, torch
from sklearn.metrics import roc_auc_score

from bcc_nb.predict import load_classifier


def view_batches(clf, paths, bs):
    "The test-time views (patch grid) of `paths`, `bs` at a time, prepared as `clf` scores them."
    xs = []
    for p in paths:
        xs += clf.views(Path(p))[0] or []
        while len(xs) >= bs: yield clf.batch_pipe(torch.stack(xs[:bs])).as_subclass(torch.Tensor); xs = xs[bs:]
    if xs: yield clf.batch_pipe(torch.stack(xs)).as_subclass(torch.Tensor)


@torch.no_grad()
def reestimate_bn(clf, paths, bs=64, head_only=False):
    "Reset every batch-norm layer of `clf.model` (or only the head's, after its dropout) and re-estimate its statistics (cumulative mean) over the views of `paths`."
    # not torch.optim.swa_utils.update_bn: it puts the whole model in training mode, and dropout would change what the head's batch norm sees
    kind = torch.nn.BatchNorm1d if head_only else torch.nn.modules.batchnorm._BatchNorm
    bns = [m for m in clf.model.modules() if isinstance(m, kind)]
    for m in bns: m.reset_running_stats(); m.momentum = None; m.train()   # the other layers as at test time: dropout off, their statistics kept
    n = 0
    for x in view_batches(clf, paths, bs):
        n += len(x)
        if len(x) > 1: clf.model(x.contiguous(memory_format=torch.channels_last))   # a batch of one has no variance
    clf.model.eval()
    return len(bns), n


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('cv', help='a cross-validation folder with fold0, fold1, ... run folders')
    p.add_argument('--out', help='a new folder for plain/, train/, head/ and target/ predictions.csv (not a run folder)')
    p.add_argument('--ways', default='plain,train,head,target', help='which of plain, train, head, target (plain is always scored)')
    p.add_argument('--threads', type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    unknown = set(a.ways.split(',')) - {'plain', 'train', 'head', 'target'}
    if unknown: raise SystemExit(f"--ways: unknown {sorted(unknown)}; choose from plain, train, head, target.")
    folds = sorted(Path(a.cv).glob('fold[0-9]*'), key=lambda f: int(f.name[4:]))
    if not folds: raise SystemExit(f"{a.cv}: no fold0, fold1, ... folders. Run bcc-quality or bcc-cv first.")
    if a.out and Path(a.out).exists(): raise SystemExit(f"{a.out} exists: give a new folder, nothing is written over.")
    rows = []
    for i, f in enumerate(folds):
        man = pd.read_csv(f/'manifest.csv')
        held = pd.read_csv(f/'predictions.csv').query("split == 'valid'")
        train = man.query("split == 'train'").path
        for way in ['plain', *[w for w in ('train', 'head', 'target') if w in a.ways.split(',')]]:
            clf = load_classifier(f, device='cpu')
            if way != 'plain': reestimate_bn(clf, held.path if way == 'target' else train, head_only=way == 'head')
            d = clf.predict(list(held.path), bs=64)
            if way == 'plain': assert np.allclose(d.prob_malignant, held.prob_malignant, atol=1e-4), f"{f}: the plain pass does not reproduce predictions.csv"
            rows.append(held.assign(fold=i, way=way, prob_malignant=d.prob_malignant.values, prob_benign=1 - d.prob_malignant.values))
    df = pd.concat(rows)
    df['y'] = (df.label == 'malignant').astype(int)
    res = {}
    for way, d in df.groupby('way', sort=False):
        res[way] = dict(pooled_roc_auc=round(roc_auc_score(d.y, d.prob_malignant), 3),
                        accuracy=round(float(((d.prob_malignant >= .5) == d.y).mean()), 3),
                        fold_roc_auc=[round(roc_auc_score(g.y, g.prob_malignant), 3) for _, g in d.groupby('fold')])
        if a.out:
            o = Path(a.out)/way; o.mkdir(parents=True)
            d.drop(columns=['way', 'y']).to_csv(o/'predictions.csv', index=False)
    print(json.dumps(dict(cv=str(a.cv), **res)))


if __name__ == '__main__': main()
