"""Image ROC-AUC of cross-validation runs at 100X and at the other magnifications, from their out-of-fold predictions.

    python bench/by_magnification.py bench/quality/default_rerun bench/quality/mag_100_macenko

breakhis-dev is mostly 100X (302 of 328 images; 7 at 40X, 16 at 200X, 3 at 400X), so each of the other magnifications
alone has too few images and patients to score; they are pooled ("other": 26 images, 21 benign, of 10 patients).
For each folder (`predictions.csv` of `bcc-cv`/`bcc-quality`) it prints the pooled AUC, the AUC of the 100X images
and of the others, and the mean P(malignant) and accuracy of the benign images at the other magnifications."""
import sys
import pandas as pd
from sklearn.metrics import roc_auc_score

def by_magnification(folder:str)->dict:
    d = pd.read_csv(f'{folder}/predictions.csv')
    y, p, hundred = d.true == 'malignant', d.prob_malignant, d.magnification == 100
    other_benign = ~hundred & ~y
    return dict(run=folder.rstrip('/').split('/')[-1], auc=roc_auc_score(y, p), auc_100x=roc_auc_score(y[hundred], p[hundred]),
                auc_other=roc_auc_score(y[~hundred], p[~hundred]), n_other=int((~hundred).sum()),
                benign_other_p=p[other_benign].mean(), benign_other_acc=(p[other_benign] < 0.5).mean())

if __name__ == '__main__':
    print(pd.DataFrame([by_magnification(f) for f in sys.argv[1:]]).round(3).to_string(index=False))
