"""The output folder (and summary line) of a bench script that trains folds with a change `TrainConfig` does not record.

The change is in no fold's config.json, so `cross_validate` would reuse a plain recipe's finished folds (or another
setting's) as if trained with it. A marker file in the folder records the script's settings; a folder is reused only
with the same settings, and never one another tool wrote.
"""
import json
from pathlib import Path
from bcc_nb.runs import RunFolder


def claim(out, marker:str, settings:dict, script:str)->Path:
    "Create `out` with `marker` holding `settings`, or check that it holds the same ones (its finished folds are reused)."
    out = Path(out); mark = out/marker
    if mark.is_file():
        if (made := json.loads(mark.read_text())) != settings:
            diff = {k: (made.get(k), v) for k, v in settings.items() if made.get(k) != v}
            raise SystemExit(f"{out} holds a {script} run with other settings {diff} (saved, given): choose another --out; nothing was changed.")
    elif RunFolder(out).state() not in ('missing', 'empty'):
        raise SystemExit(f"{out} was not made by {script} (it has no {marker}): its folds would be reused as if trained with "
                         f"{settings}. Choose a new folder for --out; nothing was changed.")
    else:
        out.mkdir(parents=True, exist_ok=True)
        mark.write_text(json.dumps(settings))
        RunFolder(out).note_written(mark)   # bcc_nb's record of what it wrote: the folder stays a bcc_nb run folder
    return out


def cv_line(cv, out)->str:
    "One line for a cross-validation: pooled ROC-AUC with its patient-bootstrap interval, accuracy and the per-fold AUCs."
    m, ci = cv.pooled.metrics, cv.pooled.ci
    return (f"{out}: pooled ROC-AUC {m['roc_auc']:.3f} ({ci['roc_auc'][0]:.3f}-{ci['roc_auc'][1]:.3f}), accuracy {m['accuracy']:.3f}, "
            f"folds {[round(v, 3) for v in cv.fold_metrics.roc_auc]}")
