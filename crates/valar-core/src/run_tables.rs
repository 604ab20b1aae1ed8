/// The columns of a run's `metrics.csv`, in order: one row per epoch, a dimension's
/// cells empty when it was not trained.
pub const METRICS_COLUMNS: [&str; 13] = [
    "epoch",
    "train_loss",
    "val_loss",
    "valence_rmse",
    "valence_pcc",
    "valence_ccc",
    "valence_sagr",
    "arousal_rmse",
    "arousal_pcc",
    "arousal_ccc",
    "arousal_sagr",
    "lr",
    "seconds",
];

/// The columns of `predictions.csv` (a run's, and `valar evaluate`'s), in order.
pub const PREDICTIONS_COLUMNS: [&str; 6] = [
    "index",
    "path",
    "valence_true",
    "valence_pred",
    "arousal_true",
    "arousal_pred",
];
