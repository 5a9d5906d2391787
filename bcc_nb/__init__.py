"""Train and honestly evaluate breast-cancer classifiers on histopathology images: a fastai Learner on DenseNet201,
patient-level splits, metrics from probabilities.

The front door (each name links to its notebook):

    from bcc_nb import train_classifier, evaluate_run, load_classifier
    learn = train_classifier()                  # the synthetic demo set; or train_classifier('path/to/BreaKHis')
    evaluate_run('runs/bcc')                    # metrics with patient-bootstrap CIs, plots, report.html
    load_classifier('runs/bcc').predict('new_images/')

For research and education only; not for diagnosis.
"""
__version__ = "0.1.0"

import warnings as _warnings
_warnings.filterwarnings('ignore', message='`torch.jit.script` is deprecated')  # raised by fastai's imports: filtered once, here

from .demo import make_demo_data
from .datasets import read_image_set, ImageSet
from .loaders import image_dataloaders
from .config import TrainConfig
from .runs import load_run
from .train import train_classifier
from .evaluate import evaluate_run, evaluate_learner
from .crossval import cross_validate
from .predict import load_classifier

__all__ = ['make_demo_data', 'read_image_set', 'ImageSet', 'image_dataloaders', 'TrainConfig', 'train_classifier', 'load_run',
           'evaluate_run', 'evaluate_learner', 'cross_validate', 'load_classifier']
