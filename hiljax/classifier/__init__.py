"""The reward classifier of HIL-SERL: frozen ResNet10 + trained spatial embeddings and head.

    from hiljax.classifier import ClassifierConfig, from_dataset, train_classifier, load_classifier
    data = from_dataset("datasets/pick_cube")                  # labels from next.reward
    classifier, history = train_classifier(data, ClassifierConfig())
    classifier.save("outputs/classifier")
    clf = load_classifier("outputs/classifier")
    p = clf(observation)                                        # P(success), a float

The env receives `clf` as a plain callable (hiljax.envs.wrappers.RewardWrapper); hiljax.envs
never imports this package. CLI: `python -m hiljax.classifier.train --help`.
"""

from .analysis import confusion_matrix, pick_threshold, precision_recall_curve
from .config import ClassifierConfig, load_classifier_config
from .data import ClassifierData, from_dataset, labels_from_rewards, split_by_episode
from .io import ClassifierFileError, export_classifier_to_lerobot
from .predict import RewardClassifier, load_classifier, save_classifier
from .training import TrainingHistory, train_classifier

__all__ = [
    "ClassifierConfig",
    "ClassifierData",
    "ClassifierFileError",
    "RewardClassifier",
    "TrainingHistory",
    "confusion_matrix",
    "export_classifier_to_lerobot",
    "from_dataset",
    "labels_from_rewards",
    "load_classifier",
    "load_classifier_config",
    "pick_threshold",
    "precision_recall_curve",
    "save_classifier",
    "split_by_episode",
    "train_classifier",
]
