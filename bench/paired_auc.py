"""Paired patient-bootstrap of the difference in pooled out-of-fold image ROC-AUC between two cross-validations on the same images.

    python bench/paired_auc.py bench/quality/default bench/quality/bcc_nb_0.1.0

Both folders are `bcc-cv`/`bcc-quality` outputs (`predictions.csv` with `path` (matched by file name), `case`, `true`, `prob_malignant`). Patients are
resampled with replacement (all of a patient's images together), and both recipes are scored on the same resample, so the
interval is for the difference itself. Also prints the mean probability of malignancy per class and magnification."""
import sys
from pathlib import Path
import numpy as np, pandas as pd
from sklearn.metrics import roc_auc_score

from bcc_nb.evaluate import patient_resamples

def paired_auc(a:str, b:str, n_boot:int=2000, seed:int=0)->dict:
    A, B = (pd.read_csv(f'{o}/predictions.csv', dtype={'case': str}).pipe(lambda d: d.set_index(d.path.map(lambda p: Path(p).name)))
            for o in (a, b))   # matched by file name: BreakHis names are unique, and the folders may spell the data path differently
    B = B.loc[A.index]
    y, case = (A.true == 'malignant').values, A.case.values
    pa, pb = A.prob_malignant.values, B.prob_malignant.values
    d = [roc_auc_score(y[s], pa[s]) - roc_auc_score(y[s], pb[s]) for s in patient_resamples(y, case, n_boot, seed)]
    d = np.array(d)
    return dict(auc_a=roc_auc_score(y, pa), auc_b=roc_auc_score(y, pb), diff=roc_auc_score(y, pa) - roc_auc_score(y, pb),
                ci=np.percentile(d, [2.5, 97.5]).round(3).tolist(), p_a_better=float((d > 0).mean()))

if __name__ == '__main__':
    a, b = sys.argv[1:3]
    print(paired_auc(a, b))
    for o in (a, b):
        p = pd.read_csv(f'{o}/predictions.csv')
        print(o, 'mean P(malignant) by class and magnification:')
        print(p.pivot_table(index='true', columns='magnification', values='prob_malignant', aggfunc='mean').round(3).to_string())
