"""Small PyTorch multilayer perceptrons with the scikit-learn estimator API.

Training uses CUDA when present (mixed precision, pinned memory) and the CPU otherwise;
the fitted network always ends on the CPU, so predicting and pickling work anywhere.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import nullcontext
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_is_fitted, check_X_y, column_or_1d
from torch import nn

_PREDICT_CHUNK = 8192


def _resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _cuda_index(device: torch.device) -> int:
    return torch.cuda.current_device() if device.index is None else device.index


def _make_network(n_in: int, n_out: int, hidden: int, n_layers: int, dropout: float) -> nn.Module:
    layers: list[nn.Module] = []
    width = n_in
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden
    layers.append(nn.Linear(width, n_out))
    return nn.Sequential(*layers)


def _to_device(array: np.ndarray, device: torch.device) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if device.type == "cuda":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor


def _step(optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
          loss: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


class _TorchMLP(BaseEstimator):
    """Shared training loop; subclasses define the target encoding, output size and loss."""

    def __init__(
        self,
        hidden_size: int = 128,
        n_layers: int = 2,
        dropout: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 64,
        max_epochs: int = 100,
        patience: int = 10,
        device: str = "auto",
        random_state: int | None = None,
    ) -> None:
        self.hidden_size = hidden_size
        self.n_layers = n_layers
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.device = device
        self.random_state = random_state

    # Subclass hooks ------------------------------------------------------------------
    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _n_outputs(self) -> int:
        raise NotImplementedError

    def _loss(self) -> nn.Module:
        raise NotImplementedError

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        return None

    # Training ------------------------------------------------------------------------
    def _fit(self, X: Any, y: Any) -> _TorchMLP:
        X, y = check_X_y(X, y, dtype=np.float32, y_numeric=False)
        self.n_features_in_ = X.shape[1]
        target = self._encode_target(column_or_1d(y))
        seed = self._seed()
        device = _resolve_device(self.device)
        rng_devices = [_cuda_index(device)] if device.type == "cuda" else []
        with torch.random.fork_rng(devices=rng_devices):  # seeds locally, leaves global RNG alone
            torch.manual_seed(seed)
            self.module_ = _make_network(self.n_features_in_, self._n_outputs(), self.hidden_size,
                                         self.n_layers, self.dropout)
            self.epochs_ = self._train(X, target, seed, device)
        self.module_.to("cpu").eval()
        return self

    def _seed(self) -> int:
        if self.random_state is None:
            return int(np.random.default_rng().integers(2**31 - 1))
        return int(self.random_state)

    def _holdout(self, X: np.ndarray, t: np.ndarray, seed: int,
                 device: torch.device) -> list[torch.Tensor]:
        """Train and validation tensors on ``device``: X_train, X_valid, t_train, t_valid."""
        if len(X) < 20:  # too few rows to hold out: stop on the training loss instead
            parts = [X, X, t, t]
        else:
            try:
                parts = train_test_split(X, t, test_size=0.1, random_state=seed,
                                         stratify=self._stratify(t))
            except ValueError:  # a class too rare to stratify
                parts = train_test_split(X, t, test_size=0.1, random_state=seed)
        return [_to_device(part, device) for part in parts]

    def _train(self, X: np.ndarray, target: np.ndarray, seed: int, device: torch.device) -> int:
        X_tr, X_va, t_tr, t_va = self._holdout(X, target, seed, device)
        net = self.module_.to(device)
        optimizer = torch.optim.AdamW(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        amp_dtype = _amp_dtype(device)
        scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
        generator = torch.Generator().manual_seed(seed)
        loss_fn = self._loss()
        best, best_state, stale, epochs = float("inf"), copy.deepcopy(net.state_dict()), 0, 0
        for epochs in range(1, self.max_epochs + 1):  # noqa: B007 - the count is returned
            order = torch.randperm(len(X_tr), generator=generator).to(device)
            net.train()
            for batch in _chunks(len(order), int(self.batch_size)):
                with _autocast(device, amp_dtype):
                    loss = loss_fn(net(X_tr[order[batch]]), t_tr[order[batch]])
                _step(optimizer, scaler, loss)
            val_loss = self._evaluate(net, loss_fn, X_va, t_va, device, amp_dtype)
            if val_loss < best - 1e-6:
                best, best_state, stale = val_loss, copy.deepcopy(net.state_dict()), 0
            elif (stale := stale + 1) >= self.patience:
                break
        net.load_state_dict(best_state)
        return epochs

    @staticmethod
    @torch.no_grad()
    def _evaluate(net: nn.Module, loss_fn: nn.Module, X: torch.Tensor, t: torch.Tensor,
                  device: torch.device, amp_dtype: torch.dtype | None) -> float:
        net.eval()
        total = 0.0
        for part in _chunks(len(X), _PREDICT_CHUNK):
            with _autocast(device, amp_dtype):
                total += float(loss_fn(net(X[part]), t[part]).float()) * (part.stop - part.start)
        return total / max(len(X), 1)

    # Prediction ----------------------------------------------------------------------
    @torch.no_grad()
    def _forward(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "module_")
        X = check_array(X, dtype=np.float32)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")
        self.module_.eval()
        tensor = torch.from_numpy(np.ascontiguousarray(X))
        chunks = _chunks(len(X), _PREDICT_CHUNK)
        return np.concatenate([self.module_(tensor[part]).float().numpy() for part in chunks])


def _amp_dtype(device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    if dtype is None:
        return nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


class TorchMLPClassifier(ClassifierMixin, _TorchMLP):
    """A multilayer perceptron classifier trained with cross-entropy and early stopping.

    Labels may be strings or numbers (``classes_`` keeps them). 10% of the rows are held
    out (stratified) to stop training after ``patience`` epochs without improvement, and
    the best weights are restored. ``epochs_`` is the number of epochs actually run.
    """

    def fit(self, X: Any, y: Any) -> TorchMLPClassifier:
        """Train on ``X`` (numbers, no missing values) and labels ``y``; returns ``self``."""
        self._fit(X, y)
        return self

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        check_classification_targets(y)
        self.label_encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.label_encoder_.classes_
        return self.label_encoder_.transform(y).astype(np.int64)

    def _n_outputs(self) -> int:
        return len(self.classes_)

    def _loss(self) -> nn.Module:
        return nn.CrossEntropyLoss()

    def _stratify(self, y: np.ndarray) -> np.ndarray | None:
        return y

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities, one column per entry of ``classes_``; rows sum to 1."""
        logits = torch.from_numpy(self._forward(X))
        return torch.softmax(logits.double(), dim=1).numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable label for each row of ``X``."""
        logits = self._forward(X)
        return self.classes_[np.argmax(logits, axis=1)]


class TorchMLPRegressor(RegressorMixin, _TorchMLP):
    """A multilayer perceptron regressor trained with MSE on an internally standardised target.

    10% of the rows are held out to stop training after ``patience`` epochs without
    improvement, and the best weights are restored. ``epochs_`` is the epochs actually run.
    """

    def fit(self, X: Any, y: Any) -> TorchMLPRegressor:
        """Train on ``X`` (numbers, no missing values) and numeric ``y``; returns ``self``."""
        self._fit(X, np.asarray(y, dtype=np.float64))
        return self

    def _encode_target(self, y: np.ndarray) -> np.ndarray:
        self.y_mean_ = float(np.mean(y))
        std = float(np.std(y))
        self.y_std_ = std if std > 0 else 1.0
        return ((y - self.y_mean_) / self.y_std_).astype(np.float32)[:, None]

    def _n_outputs(self) -> int:
        return 1

    def _loss(self) -> nn.Module:
        return nn.MSELoss()

    def predict(self, X: Any) -> np.ndarray:
        """Predicted target values for each row of ``X``."""
        return self._forward(X)[:, 0].astype(np.float64) * self.y_std_ + self.y_mean_
