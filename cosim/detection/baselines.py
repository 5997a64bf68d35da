"""Classic ML baselines (scikit-learn) on the same windows as the learned detector, as `python` plug-ins.

Use them as `{kind: python, path: <this file>:LogisticBaseline, window: 8, fit: DATASET}`. Each
standardises its inputs on the fitting windows and reads a window as its last step plus the
change over the window (last minus first step), so a model sees both the state and its jump.
`IsolationForestBaseline` fits on the clean windows only (unsupervised); the others on the labels.
"""

from __future__ import annotations

import numpy as np


def window_features(windows: np.ndarray) -> np.ndarray:
    """(n, length, names) -> (n, 2 names): the last step and the change since the first."""
    last = windows[:, -1, :]
    return np.nan_to_num(np.concatenate([last, last - windows[:, 0, :]], axis=1))


class _Baseline:
    """Standardise, then a scikit-learn model; `score` is its attack score for one window."""

    threshold = 0.5

    def __init__(self, seed: int = 0, target_fpr: float = 0.01):
        self.seed, self.target_fpr = seed, target_fpr

    def _model(self):
        raise NotImplementedError

    def _raw(self, X: np.ndarray) -> np.ndarray:
        return self.model.predict_proba(X)[:, 1]

    def _train(self, X: np.ndarray, labels: np.ndarray) -> None:
        self.model.fit(X, labels >= 0.5)

    def fit(self, windows: np.ndarray, labels: np.ndarray) -> None:
        """Fit on windows with 0/1 labels; the threshold leaves `target_fpr` of the clean fitting windows alarmed."""
        from cosim.detection.cnn_rnn import threshold_at

        X = window_features(windows)
        self.mean, self.std = X.mean(axis=0), np.where(X.std(axis=0) > 1e-9, X.std(axis=0), 1.0)
        self.model = self._model()
        self._train((X - self.mean) / self.std, labels)
        self.threshold = threshold_at(self.scores(windows), labels < 0.5, self.target_fpr)

    def scores(self, windows: np.ndarray) -> np.ndarray:
        """Scores of many windows at once."""
        return self._raw((window_features(windows) - self.mean) / self.std)

    def score(self, window: np.ndarray) -> float:
        """Score of one window (length x names)."""
        return float(self.scores(window[None])[0])


class LogisticBaseline(_Baseline):
    """Logistic regression (balanced class weights)."""

    def _model(self):
        from sklearn.linear_model import LogisticRegression

        return LogisticRegression(max_iter=2000, class_weight="balanced")


class ForestBaseline(_Baseline):
    """Random forest of 100 trees (balanced class weights)."""

    def _model(self):
        from sklearn.ensemble import RandomForestClassifier

        return RandomForestClassifier(n_estimators=100, min_samples_leaf=2, class_weight="balanced",
                                      random_state=self.seed, n_jobs=1)


class BoostedBaseline(_Baseline):
    """Gradient-boosted trees (scikit-learn's histogram boosting, balanced class weights, 200 iterations)."""

    def _model(self):
        from sklearn.ensemble import HistGradientBoostingClassifier

        return HistGradientBoostingClassifier(max_iter=200, class_weight="balanced", random_state=self.seed)


class IsolationForestBaseline(_Baseline):
    """Isolation forest on the clean windows: the more isolated a window, the higher its score."""

    def _model(self):
        from sklearn.ensemble import IsolationForest

        return IsolationForest(n_estimators=200, random_state=self.seed)

    def _train(self, X: np.ndarray, labels: np.ndarray) -> None:
        self.model.fit(X[labels < 0.5])

    def _raw(self, X: np.ndarray) -> np.ndarray:
        return -self.model.score_samples(X)
