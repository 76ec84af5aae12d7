"""The training batches: a Keras PyDataset of shuffled, weighted, optionally mixed
batches."""

from __future__ import annotations

import numpy as np

from .constants import CLASSES
from .data import to_float
from .mixing import mix_batch


def make_train_seq(keras, x_u8, y, cw, batch, seed, one_hot=False, mixup=0.0, cutmix=0.0,
                   mix_prob=1.0):
    class TrainSeq(keras.utils.PyDataset):
        """Shuffled full batches (drop remainder: one compiled batch shape), with class-weight
        sample weights, converted to float32 [0, 1] per batch on the host; one-hot labels
        (and mixup/cutmix, mixed on the host before the model's augmentation) when asked."""

        def __init__(self):
            super().__init__(workers=1, use_multiprocessing=False)
            self.x, self.y, self.w = x_u8, y, np.asarray(cw, np.float32)
            self.batch = min(batch, len(y))
            self.epoch = 0
            self._shuffle()

        def _shuffle(self):
            self.order = np.random.default_rng(seed + self.epoch).permutation(len(self.y))

        def __len__(self):
            return max(1, len(self.y) // self.batch)

        def __getitem__(self, i):
            idx = self.order[i * self.batch:(i + 1) * self.batch]
            yb = self.y[idx]
            if not one_hot:
                return to_float(self.x[idx]), yb, self.w[yb]
            xb, wb = to_float(self.x[idx]), self.w[yb]
            yh = np.eye(len(CLASSES), dtype=np.float32)[yb]
            if mixup or cutmix:
                rng = np.random.default_rng((seed, self.epoch, i))
                xb, yh, wb, _ = mix_batch(xb, yh, wb, rng, mixup, cutmix, mix_prob)
            return xb, yh, wb

        def on_epoch_end(self):
            self.epoch += 1
            self._shuffle()

    return TrainSeq()
