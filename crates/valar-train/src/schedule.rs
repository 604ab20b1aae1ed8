//! Learning-rate schedules and early stopping on validation CCC.

use crate::config::{ScheduleKind, TrainConfig};
use serde::{Deserialize, Serialize};

/// The learning rate at every step of a run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LrSchedule {
    kind: ScheduleKind,
    lr: f64,
    min_lr: f64,
    epochs: usize,
    step_size: usize,
    gamma: f64,
    total_steps: usize,
    steps_per_epoch: usize,
    /// Steps of linear warm-up at the start; 0 for none.
    warmup_steps: usize,
}

impl LrSchedule {
    pub(crate) fn new(config: &TrainConfig, steps_per_epoch: usize) -> Self {
        LrSchedule {
            kind: config.schedule,
            lr: config.lr,
            min_lr: config.min_lr,
            epochs: config.epochs.max(1),
            step_size: config.step_size.max(1),
            gamma: config.gamma,
            total_steps: (config.epochs * steps_per_epoch).max(1),
            steps_per_epoch,
            warmup_steps: config.warmup * steps_per_epoch,
        }
    }

    /// The rate for step `step` (0-based) of epoch `epoch` (0-based). Cosine decays per step,
    /// reaching `min_lr` only after the last step; the step schedule changes at epoch boundaries.
    /// During warm-up, global step k (0-based) of W warm-up steps takes (k + 1)/W of that rate,
    /// as timm's and transformers' linear warm-up, so the first step trains at lr/W and step W
    /// at the schedule's own rate.
    pub(crate) fn at(&self, epoch: usize, step: usize) -> f64 {
        let rate = self.scheduled(epoch, step);
        let k = epoch * self.steps_per_epoch + step;
        if k < self.warmup_steps {
            rate * (k + 1) as f64 / self.warmup_steps as f64
        } else {
            rate
        }
    }

    /// The schedule's rate, before any warm-up.
    fn scheduled(&self, epoch: usize, step: usize) -> f64 {
        match self.kind {
            ScheduleKind::Constant => self.lr,
            ScheduleKind::Step => {
                let decays = i32::try_from(epoch / self.step_size).unwrap_or(i32::MAX);
                self.lr * self.gamma.powi(decays)
            }
            ScheduleKind::Cosine => {
                let t = (epoch * self.steps_per_epoch + step) as f64 / self.total_steps as f64;
                self.cosine(t)
            }
            ScheduleKind::CosineEpoch => self.cosine(epoch as f64 / self.epochs as f64),
        }
    }

    /// The cosine curve from `lr` (t = 0) to `min_lr` (t = 1).
    fn cosine(&self, t: f64) -> f64 {
        self.min_lr
            + (self.lr - self.min_lr) * 0.5 * (1.0 + (std::f64::consts::PI * t.min(1.0)).cos())
    }
}

/// Tracks the best validation score and stops after `patience` epochs without a better one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EarlyStopping {
    /// 0: never stop early.
    pub patience: usize,
    /// The best score so far and its 1-based epoch.
    pub best: Option<(f64, usize)>,
    /// Epochs since the best.
    pub bad_epochs: usize,
}

impl EarlyStopping {
    pub(crate) fn new(patience: usize) -> Self {
        EarlyStopping {
            patience,
            best: None,
            bad_epochs: 0,
        }
    }

    /// Records the score of `epoch`; returns whether it is a new best. A NaN score (a constant
    /// prediction can give one) never counts as better, but a first finite score always does.
    pub(crate) fn record(&mut self, epoch: usize, score: f64) -> bool {
        let better = match self.best {
            _ if score.is_nan() => false,
            None => true,
            Some((best, _)) => score > best,
        };
        if better {
            self.best = Some((score, epoch));
            self.bad_epochs = 0;
        } else {
            self.bad_epochs += 1;
        }
        better
    }

    /// Whether training should stop now.
    pub(crate) fn should_stop(&self) -> bool {
        self.patience > 0 && self.bad_epochs >= self.patience
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn config(kind: ScheduleKind) -> TrainConfig {
        let mut c = TrainConfig::defaults(PathBuf::from("d"));
        c.schedule = kind;
        c.lr = 0.1;
        c.min_lr = 0.0;
        c.epochs = 4;
        c.step_size = 2;
        c.gamma = 0.5;
        // The schedules alone; warm-up has its own test.
        c.warmup = 0;
        c
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn cosine_starts_at_lr_halves_midway_and_ends_near_min() {
        let s = LrSchedule::new(&config(ScheduleKind::Cosine), 10);
        assert!(close(s.at(0, 0), 0.1));
        // Step 20 of 40: cos(π/2) = 0.
        assert!(close(s.at(2, 0), 0.05));
        // Step 10 of 40: 0.05·(1 + cos(π/4)).
        assert!(close(
            s.at(1, 0),
            0.05 * (1.0 + std::f64::consts::FRAC_1_SQRT_2)
        ));
        let last = s.at(3, 9);
        assert!(last > 0.0 && last < 0.001, "{last}");
        // Monotone non-increasing.
        let all: Vec<f64> = (0..4)
            .flat_map(|e| (0..10).map(move |k| (e, k)))
            .map(|(e, k)| s.at(e, k))
            .collect();
        assert!(all.windows(2).all(|w| w[1] <= w[0]));
    }

    /// PyTorch's `CosineAnnealingLR(T_max=4)` stepped after each epoch trains epoch e at
    /// 0.05·(1 + cos(π·e/4)): 0.1, 0.0854, 0.05, 0.0146, constant within an epoch.
    #[test]
    fn cosine_epoch_follows_pytorch_cosine_annealing() {
        let s = LrSchedule::new(&config(ScheduleKind::CosineEpoch), 10);
        let expect = [
            0.1,
            0.05 * (1.0 + std::f64::consts::FRAC_1_SQRT_2),
            0.05,
            0.05 * (1.0 - std::f64::consts::FRAC_1_SQRT_2),
        ];
        for (e, want) in expect.into_iter().enumerate() {
            assert!(close(s.at(e, 0), want), "epoch {e}: {}", s.at(e, 0));
            assert!(close(s.at(e, 9), want), "epoch {e}, last step");
        }
    }

    #[test]
    fn step_decays_every_step_size_epochs() {
        let s = LrSchedule::new(&config(ScheduleKind::Step), 10);
        assert!(close(s.at(0, 5), 0.1));
        assert!(close(s.at(1, 9), 0.1));
        assert!(close(s.at(2, 0), 0.05));
        assert!(close(s.at(3, 3), 0.05));
        assert!(close(s.at(4, 0), 0.025));
    }

    #[test]
    fn constant_is_constant() {
        let s = LrSchedule::new(&config(ScheduleKind::Constant), 10);
        assert!(close(s.at(0, 0), 0.1) && close(s.at(3, 9), 0.1));
    }

    /// Two warm-up epochs of 10 steps ramp the cosine-epoch rate by (k + 1)/20, then the
    /// schedule goes on as without warm-up; warm-up 0 changes nothing.
    #[test]
    fn warmup_ramps_linearly_to_the_schedule() {
        let plain = LrSchedule::new(&config(ScheduleKind::CosineEpoch), 10);
        let mut c = config(ScheduleKind::CosineEpoch);
        c.warmup = 2;
        let warm = LrSchedule::new(&c, 10);
        assert!(close(warm.at(0, 0), 0.1 / 20.0));
        assert!(close(warm.at(0, 9), 0.1 * 10.0 / 20.0));
        // Epoch 1 trains at 0.05·(1 + cos(π/4)) under cosine-epoch, ramped by 11/20 … 20/20.
        assert!(close(warm.at(1, 0), plain.at(1, 0) * 11.0 / 20.0));
        assert!(close(warm.at(1, 9), plain.at(1, 9)));
        for (e, k) in [(2, 0), (2, 5), (3, 9)] {
            assert!(close(warm.at(e, k), plain.at(e, k)), "epoch {e} step {k}");
        }
        let mut c = config(ScheduleKind::Constant);
        c.warmup = 0;
        assert_eq!(
            LrSchedule::new(&c, 10),
            LrSchedule::new(&config(ScheduleKind::Constant), 10)
        );
        // One epoch of 4 steps on a constant rate: lr/4, 2lr/4, 3lr/4, then lr.
        c.warmup = 1;
        let s = LrSchedule::new(&c, 4);
        let got: Vec<f64> = (0..6).map(|k| s.at(k / 4, k % 4)).collect();
        let want = [0.025, 0.05, 0.075, 0.1, 0.1, 0.1];
        assert!(got.iter().zip(want).all(|(&g, w)| close(g, w)), "{got:?}");
    }

    #[test]
    fn early_stopping_counts_epochs_since_the_best() {
        let mut e = EarlyStopping::new(2);
        assert!(e.record(1, 0.2));
        assert!(e.record(2, 0.3));
        assert!(!e.record(3, 0.3)); // equal is not better
        assert!(!e.should_stop());
        assert!(!e.record(4, f64::NAN));
        assert!(e.should_stop());
        assert_eq!(e.best, Some((0.3, 2)));
        assert!(e.record(5, 0.4));
        assert!(!e.should_stop());
    }

    #[test]
    fn zero_patience_never_stops_and_nan_first_is_not_best() {
        let mut e = EarlyStopping::new(0);
        assert!(!e.record(1, f64::NAN));
        assert_eq!(e.best, None);
        for k in 2..20 {
            e.record(k, -1.0);
        }
        assert!(!e.should_stop());
    }
}
